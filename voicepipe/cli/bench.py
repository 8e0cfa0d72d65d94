"""`voicepipe bench`: measure time-to-first-audio like a profiler (the work: apps.bench).

Why ~430 lines: one small table builder per view of the results (summary, comparison, where
TTFA went, the floor, cold starts) plus CSV, plot and progress, all sharing labels and console.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable, Sequence
from functools import partial
from itertools import combinations
from typing import Any

import anyio
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from voicepipe.apps.bench import (
    BREAKDOWN_FIELDS,
    BenchConfig,
    BenchProgress,
    BenchResult,
    bench,
    compare,
)
from voicepipe.apps.coldstart import ColdRun, cold_start
from voicepipe.apps.prompts import read_prompts
from voicepipe.audio.sinks.base import AudioSink
from voicepipe.cli import voicebench
from voicepipe.cli.common import (
    add_pipeline_options,
    err,
    export_otel,
    require_prompt,
    timeouts,
)
from voicepipe.errors import ConfigError
from voicepipe.metrics import SUMMARY_FIELDS, stats

# Rows of the table: (summary key, label, scale, decimals).
_ROWS = (
    ("ttft_ms", "ttft_ms (first token)", 1.0, 0),
    ("first_chunk_ms", "first_chunk_ms", 1.0, 0),
    ("tts_first_audio_ms", "tts_first_audio_ms", 1.0, 0),
    ("ttfa_ms", "ttfa_ms (first audio)", 1.0, 0),
    ("audible_ms", "audible_ms (left the speaker)", 1.0, 0),
    ("output_latency_ms", "output_latency_ms", 1.0, 0),
    ("total_ms", "total_ms", 1.0, 0),
    ("audio_ms", "audio_s", 0.001, 1),
    ("rtf", "rtf (synthesis/audio)", 1.0, 2),
    ("underrun_ms", "underrun_ms", 1.0, 0),
)
# Measured only when the runs play (--play): when the first sample left the speaker.
_PLAYBACK_ROWS = ("audible_ms", "output_latency_ms")
_PARTS = {
    "llm_first_token_ms": "model's first token",
    "waiting_for_words_ms": "waiting for words",
    "tts_first_audio_ms": "TTS first audio",
    "pipeline_overhead_ms": "pipeline overhead",
}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="measure time-to-first-audio (null sink, models loaded once)",
        description="Run PROMPT (or each line of --prompts FILE) N times after K warm-ups and "
        "report time to first text, first chunk, first TTS audio and first audio at the sink "
        "(TTFA), all from the moment the LLM request is sent, with where TTFA went. With "
        "--compare, configurations run interleaved (A B A B ...) so machine noise falls on "
        "all of them alike. Runs are recorded in the trace store (--no-trace to skip).",
    )
    p.add_argument(
        "prompt", nargs="?", help="what to ask (`-` or omitted with a pipe: read from stdin)"
    )
    p.add_argument("--prompts", metavar="FILE", help="prompts, one per line (instead of PROMPT)")
    p.add_argument(
        "-n", type=int, default=5, metavar="N", help="measured runs per prompt (default 5)"
    )
    p.add_argument("--warmup", type=int, default=1, metavar="K", help="warm-up runs (1)")
    p.add_argument(
        "--compare",
        metavar="KEY=A,B",
        help="compare values of one setting side by side: chunking, llm or tts "
        "(e.g. chunking=naive,sentence,adaptive)",
    )
    p.add_argument(
        "--play",
        action="store_true",
        help="play every run on the speakers instead of a null sink, and report audible_ms: "
        "when the first sample left the speaker (PortAudio's DAC time)",
    )
    p.add_argument(
        "--device", metavar="NAME|INDEX", help="output device for --play (voicepipe devices)"
    )
    p.add_argument("--json", metavar="FILE", help="write every run and the summary as JSON")
    p.add_argument("--csv", metavar="FILE", help="write one row per run as CSV")
    p.add_argument(
        "--plot", metavar="FILE.png", help="draw the timeline of runs (needs voicepipe[plot])"
    )
    p.add_argument(
        "--plot-runs",
        choices=("median", "all"),
        default="median",
        help="what --plot draws: the median-TTFA run of each configuration (default) or all",
    )
    p.add_argument(
        "--cold",
        type=int,
        nargs="?",
        const=1,
        default=0,
        metavar="N",
        help="also time N fresh processes per configuration (default 1): process start to "
        "first audio, model loading included",
    )
    voicebench.add_options(p)
    add_pipeline_options(p)
    p.set_defaults(seed=0, run=run, is_async=True, needs_prompt=False, prompt_stdin=True)


async def _prompts(args: argparse.Namespace) -> list[str]:
    if args.prompts:
        if args.prompt is not None:
            raise ConfigError("give either PROMPT or --prompts FILE, not both")
        return read_prompts(args.prompts)
    require_prompt(args)
    return [args.prompt]


def configs_from_args(args: argparse.Namespace) -> list[BenchConfig]:
    """The configurations the options describe (one, or one per --compare value)."""
    base = BenchConfig(
        llm=args.llm,
        tts=args.tts,
        chunking=args.chunking,
        llm_url=args.llm_url,
        tts_url=args.tts_url,
        system=args.system,
        max_tokens=args.max_tokens,
        seed=args.seed,
        temperature=args.temperature,
        tts_speed=args.tts_speed,
        tts_format=args.tts_format,
        tts_instructions=args.tts_instructions,
        llm_key_env=args.llm_key_env,
        tts_key_env=args.tts_key_env,
    )
    return compare(base, args.compare) if args.compare else [base]


def _short_labels(configs: Sequence[BenchConfig], spec: str | None) -> list[str]:
    if spec and len(configs) > 1:
        key = spec.partition("=")[0].strip()
        return [str(getattr(c, key)) for c in configs]
    return [c.label for c in configs]


def _cell(value: float | None, scale: float, decimals: int) -> str:
    return "-" if value is None else f"{value * scale:.{decimals}f}"


def _console() -> Console:
    console = Console(soft_wrap=False, highlight=False)
    if not console.is_terminal:
        console = Console(width=120, soft_wrap=False, highlight=False, no_color=True)
    return console


def _rows(play: bool) -> tuple[tuple[str, str, float, int], ...]:
    """The table rows: the playback ones only when the runs played."""
    return tuple(row for row in _ROWS if play or row[0] not in _PLAYBACK_ROWS)


def _summary_table(result: BenchResult, play: bool = False) -> Table:
    title = escape(f"{result.config.label}  (n={len(result.runs)}, ms)")
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for column in ("p50", "p95", "min", "max"):
        table.add_column(column, justify="right")
    summary = result.summary()
    for key, label, scale, decimals in _rows(play):
        s = summary[key]
        table.add_row(label, *(_cell(s[c], scale, decimals) for c in ("p50", "p95", "min", "max")))
    return table


def _median(result: BenchResult, key: str) -> float | None:
    return result.summary()[key]["p50"]


def _compare_table(
    results: Sequence[BenchResult], labels: Sequence[str], play: bool = False
) -> Table:
    table = Table(title="medians side by side, and their ratios", title_justify="left")
    table.add_column("metric (p50)")
    for label in labels:
        table.add_column(escape(label), justify="right")
    pairs = list(combinations(range(len(results)), 2))
    for i, j in pairs:
        table.add_column(escape(f"{labels[j]} / {labels[i]}"), justify="right")
    for key, label, scale, decimals in _rows(play):
        medians = [_median(r, key) for r in results]
        # A ratio of values under one display unit (a 0.3 ms first token) is noise.
        floor = 10.0**-decimals / scale
        ratios = [
            "-" if a is None or b is None or a < floor or b < floor else f"{b / a:.2f}"
            for a, b in ((medians[i], medians[j]) for i, j in pairs)
        ]
        table.add_row(label, *(_cell(m, scale, decimals) for m in medians), *ratios)
    return table


def _parts_table(title: str, labels: Sequence[str]) -> Table:
    """A table of named parts (rows), one column per configuration."""
    table = Table(title=title, title_justify="left")
    table.add_column("part")
    for label in labels:
        table.add_column(escape(label), justify="right")
    return table


def _breakdown_table(results: Sequence[BenchResult], labels: Sequence[str]) -> Table:
    table = _parts_table("where TTFA went (median ms of each part)", labels)
    parts = [r.breakdown() for r in results]
    for key in BREAKDOWN_FIELDS:
        table.add_row(_PARTS[key], *("-" if p is None else f"{p[key]:.0f}" for p in parts))
    return table


_FLOOR_ROWS = {
    "first_token_ms": "first token",
    "three_words_ms": "first three words",
    "tts_three_words_ms": "TTS on those three words alone",
    "floor_ms": "floor (three words + their TTS)",
    "ttfa_over_floor": "TTFA p50 / floor",
}


def _floor_table(results: Sequence[BenchResult], labels: Sequence[str]) -> Table:
    """The floor measured in the same runs (see ``voicepipe.apps.bench.Floor``)."""
    table = _parts_table("the floor, in the same runs (median ms)", labels)
    floors = [r.floor() for r in results]
    for key, name in _FLOOR_ROWS.items():
        decimals = 2 if key == "ttfa_over_floor" else 0
        cells = ("-" if f is None or key not in f else f"{f[key]:.{decimals}f}" for f in floors)
        table.add_row(name, *cells)
    return table


def _pipeline_share(result: BenchResult, label: str) -> str:
    parts = result.breakdown()
    ttfa = _median(result, "ttfa_ms")
    if parts is None or not ttfa:
        return f"pipeline's own share of TTFA [{label}]: -"
    own = parts["pipeline_overhead_ms"]
    return (
        f"pipeline's own share of TTFA [{label}]: {own:.1f} ms of {ttfa:.0f} ms "
        f"({100 * own / ttfa:.1f}%)"
    )


def _cold_table(cold: Sequence[Sequence[ColdRun]], labels: Sequence[str]) -> Table:
    table = Table(title="cold start: a fresh process per run (ms)", title_justify="left")
    table.add_column("configuration")
    table.add_column("n", justify="right")
    for column in ("start→audio p50", "min", "max", "loading p50", "ttfa p50"):
        table.add_column(column, justify="right")
    for label, runs in zip(labels, cold, strict=True):
        total = stats([r.process_to_first_audio_ms for r in runs])
        load = stats([r.load_ms for r in runs])
        ttfa = stats([r.ttfa_ms for r in runs])
        table.add_row(
            escape(label),
            str(len(runs)),
            *(_cell(v, 1.0, 0) for v in (total["p50"], total["min"], total["max"])),
            _cell(load["p50"], 1.0, 0),
            _cell(ttfa["p50"], 1.0, 0),
        )
    return table


def _csv(results: Sequence[BenchResult]) -> str:
    out = io.StringIO()
    columns = ["llm", "tts", "chunking", "prompt", "run", *SUMMARY_FIELDS, "rtf", "chunks"]
    columns.append("first_chunk_text")
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for result in results:
        for i, run in enumerate(result.runs, 1):
            c = result.config
            writer.writerow(
                {"llm": c.llm, "tts": c.tts, "chunking": c.chunking, "run": i, **run.as_dict()}
            )
    return out.getvalue()


def _plot(args: argparse.Namespace, results: Sequence[BenchResult], labels: list[str]) -> None:
    from voicepipe.apps.plot import plot_timelines

    panels = []
    for result, label in zip(results, labels, strict=True):
        chosen = result.runs if args.plot_runs == "all" else [result.median_run()]
        for run in chosen:
            ttfa = run.metrics.ttfa_ms
            what = (
                "median run" if args.plot_runs == "median" else f"run {result.runs.index(run) + 1}"
            )
            title = f"{label}: {what}, TTFA {'-' if ttfa is None else f'{ttfa:.0f} ms'}"
            panels.append((title, run.run.timeline))
    plot_timelines(panels, args.plot)


def _fallback(message: str) -> None:
    """A chain switched (``--tts a,b``): the runs that follow measured the next provider."""
    if sys.stderr.isatty():
        print(file=sys.stderr)  # off the progress line
    err(message)


def _progress(p: BenchProgress) -> None:
    ttfa, audible = p.run.metrics.ttfa_ms, p.run.metrics.audible_ms
    label = "warm-up" if p.warmup else "run"
    line = (
        f"[{p.done}/{p.total}] {label} {p.config.label}: TTFA "
        f"{'-' if ttfa is None else f'{ttfa:.0f} ms'}"
    )
    if audible is not None:
        line += f", audible {audible:.0f} ms"
    if sys.stderr.isatty():  # one line, rewritten; logs get a line per run
        print(f"\r{line}   ", end="", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr)


async def run(args: argparse.Namespace) -> int:
    if args.voice:
        if args.prompt is not None or args.prompts or args.compare or args.cold or args.play:
            raise ConfigError(
                "--voice measures its recordings: no PROMPT, --prompts, --compare, --play"
            )
        return await voicebench.run(args)
    prompts = await _prompts(args)
    configs = configs_from_args(args)
    if args.n < 1 or args.warmup < 0 or args.cold < 0:
        raise ConfigError("-n must be at least 1, --warmup and --cold at least 0")
    if args.plot:
        from voicepipe.apps.plot import require_matplotlib

        require_matplotlib()  # a missing matplotlib fails before minutes of benchmarking
    play: bool = args.play
    if args.device is not None and not play:
        raise ConfigError("--device chooses the speakers for --play: add --play")
    sink: Callable[[], AudioSink] | None = None
    if play:
        from voicepipe.audio.devices import resolve
        from voicepipe.audio.sinks.playback import PlaybackSink

        resolve(args.device, "output")  # a missing device fails before the models load
        sink = partial(PlaybackSink, args.device)  # a fresh stream for every run

    labels = _short_labels(configs, args.compare)
    cold: list[list[ColdRun]] = []
    for config in configs if args.cold else ():
        print(f"cold start: {args.cold} fresh process(es) for {config.label}...", file=sys.stderr)
        cold.append(await cold_start(config, prompts[0], args.cold))
    print(f"loading models for {len(configs)} configuration(s)...", file=sys.stderr)
    results = await bench(
        configs,
        prompts,
        n=args.n,
        warmup=args.warmup,
        timeouts=timeouts(args),
        on_run=_progress,
        sink=sink,
        on_fallback=_fallback,
    )
    if sys.stderr.isatty():
        print(file=sys.stderr)

    console = _console()
    for result in results:
        console.print(_summary_table(result, play))
    if len(results) > 1:
        console.print(_compare_table(results, labels, play))
    console.print(_breakdown_table(results, labels))
    console.print(_floor_table(results, labels))
    for result, label in zip(results, labels, strict=True):
        console.print(_pipeline_share(result, label), markup=False)
    if cold:
        console.print(_cold_table(cold, labels))

    if args.trace is not False:  # on by default for bench
        from voicepipe.apps.traces import record

        where = {"sink": "playback"} if play else {}
        batch = [
            (r.run, {**result.config.public(), "bench": label, **where}, r.prompt)
            for result, label in zip(results, labels, strict=True)
            for r in result.runs
        ]
        ids = await record(batch, command="bench", text=args.trace_text)
        print(f"traces {ids[0]}-{ids[-1]} recorded (voicepipe traces show ID)", file=sys.stderr)
    for result, label in zip(results, labels, strict=True):  # with OTEL_EXPORTER_OTLP_ENDPOINT
        settings = {**result.config.public(), "bench": label}
        await export_otel(args, [r.run for r in result.runs], "bench", settings)
    report = [r.as_dict(args.n, args.warmup) for r in results]
    for entry in report:
        entry["config"]["sink"] = "playback" if play else "null"
    for entry, runs in zip(report, cold, strict=False):
        entry["cold"] = {
            "runs": [c.as_dict() for c in runs],
            "summary": {
                k: stats([getattr(c, k) for c in runs])
                for k in ("process_to_first_audio_ms", "load_ms", "ttfa_ms")
            },
        }
    if args.json:
        payload: dict[str, Any] = report[0] if len(report) == 1 else {"results": report}
        await anyio.Path(args.json).write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}", file=sys.stderr)
    if args.csv:
        await anyio.Path(args.csv).write_text(_csv(results))
        print(f"wrote {args.csv}", file=sys.stderr)
    if args.plot:
        _plot(args, results, labels)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
