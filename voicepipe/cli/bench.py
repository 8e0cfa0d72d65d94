"""`voicepipe bench`: measure time-to-first-audio, for one or several configurations."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

import anyio

from voicepipe.audio.sinks import NullSink
from voicepipe.cli.common import add_pipeline_options
from voicepipe.errors import ConfigError
from voicepipe.metrics import SUMMARY_FIELDS, RunMetrics, summarize
from voicepipe.pipeline import CHUNKINGS, Pipeline
from voicepipe.providers import make_llm, make_tts


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="measure time-to-first-audio (null sink, models loaded once)",
        description="Run PROMPT N times after K warm-ups and report time to first text, first "
        "chunk, first TTS audio and first audio at the sink (TTFA), all from the moment "
        "the LLM request is sent. With --compare, configurations run interleaved "
        "(A B A B ...) so machine noise falls on all of them alike.",
    )
    p.add_argument("prompt", help="what to ask")
    p.add_argument("-n", type=int, default=5, metavar="N", help="measured runs (default 5)")
    p.add_argument("--warmup", type=int, default=1, metavar="K", help="warm-up runs (1)")
    p.add_argument("--json", metavar="FILE", help="write every run and the summary as JSON")
    p.add_argument(
        "--compare",
        metavar="KEY=A,B",
        help="compare values of one setting side by side: chunking, llm or tts "
        "(e.g. chunking=naive,sentence,adaptive)",
    )
    add_pipeline_options(p)
    p.set_defaults(seed=0, run=run, is_async=True, needs_prompt=True)


def _bench_configs(args: argparse.Namespace) -> list[dict[str, Any]]:
    base = {"llm": args.llm, "tts": args.tts, "chunking": args.chunking}
    if not args.compare:
        return [base]
    key, _, values = args.compare.partition("=")
    key = key.strip()
    if key not in base or not values:
        raise ConfigError(f"--compare takes KEY=A,B with KEY one of {', '.join(base)}")
    options = [v.strip() for v in values.split(",") if v.strip()]
    if key == "chunking":
        for v in options:
            if v not in CHUNKINGS:
                raise ConfigError(f"unknown chunking {v!r}: use one of {', '.join(CHUNKINGS)}")
    return [{**base, key: v} for v in options]


def _table(rows: dict[str, dict[str, float | None]]) -> Iterator[str]:
    yield f"  {'metric':<20}{'p50':>9}{'p95':>9}{'min':>9}{'max':>9}"
    for name, s in rows.items():
        cells = "".join("        -" if v is None else f"{v:9.0f}" for v in s.values())
        yield f"  {name:<20}{cells}"


async def run(args: argparse.Namespace) -> int:
    if args.n < 1 or args.warmup < 0:
        raise ConfigError("-n must be at least 1 and --warmup at least 0")
    configs = _bench_configs(args)
    results: list[list[RunMetrics]] = [[] for _ in configs]
    # Models are loaded once per distinct spec and shared by the configurations using them.
    llms: dict[str, Any] = {}
    ttss: dict[str, Any] = {}
    pipes: list[Pipeline] = []
    for c in configs:
        if c["llm"] not in llms:
            llms[c["llm"]] = make_llm(
                c["llm"], url=args.llm_url, max_tokens=args.max_tokens, seed=args.seed
            )
        if c["tts"] not in ttss:
            ttss[c["tts"]] = make_tts(c["tts"], url=args.tts_url)
        pipes.append(
            Pipeline(llms[c["llm"]], ttss[c["tts"]], chunking=c["chunking"], system=args.system)
        )
    try:
        print(f"loading models for {len(configs)} configuration(s)...", file=sys.stderr)
        for pipe in pipes:
            await pipe.prepare()
        total = (args.warmup + args.n) * len(configs)
        done = 0
        for i in range(args.warmup + args.n):
            for k, pipe in enumerate(pipes):  # interleaved: A B A B ...
                run = await pipe.speak(args.prompt, NullSink(realtime=True))
                done += 1
                label = "warm-up" if i < args.warmup else f"run {i - args.warmup + 1}/{args.n}"
                ttfa = run.metrics.ttfa_ms
                print(
                    f"\r[{done}/{total}] {label} {_label(configs[k])}: TTFA "
                    f"{'-' if ttfa is None else f'{ttfa:.0f} ms'}   ",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
                if i >= args.warmup:
                    results[k].append(run.metrics)
    finally:
        with anyio.CancelScope(shield=True):
            for part in (*llms.values(), *ttss.values()):
                close = getattr(part, "aclose", None)
                if close is not None:
                    await close()
    print(file=sys.stderr)
    report: list[dict[str, Any]] = []
    for config, runs in zip(configs, results, strict=True):
        summary = summarize(runs)
        report.append(
            {
                "config": {**config, "prompt": args.prompt, "n": args.n, "warmup": args.warmup},
                "runs": [
                    {k: getattr(r, k) for k in (*SUMMARY_FIELDS, "first_chunk_text")} for r in runs
                ],
                "summary": summary,
            }
        )
        print(f"{_label(config)}  (n={len(runs)}, ms)")
        for line in _table(summary):
            print(line)
    if len(report) > 1:
        base = report[0]["summary"]["ttfa_ms"]["p50"]
        for entry in report[1:]:
            p50 = entry["summary"]["ttfa_ms"]["p50"]
            if base and p50 is not None:
                print(
                    f"TTFA p50 ratio {_label(entry['config'])} / {_label(report[0]['config'])}: "
                    f"{p50 / base:.2f}"
                )
    if args.json:
        payload: dict[str, Any] = report[0] if len(report) == 1 else {"results": report}
        await anyio.Path(args.json).write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _label(config: dict[str, Any]) -> str:
    return f"llm={config['llm']} tts={config['tts']} chunking={config['chunking']}"
