"""`voicepipe synth`: write the answer to an audio file, or one file per prompt of a list."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import anyio

from voicepipe.apps.batch import FORMATS, BatchResult
from voicepipe.audio.sinks.files import check_bitrate, file_sink, supported_formats
from voicepipe.cli.common import (
    EXIT_ERROR,
    add_pipeline_options,
    make_pipeline,
    print_metrics,
    record_trace,
    require_prompt,
)
from voicepipe.errors import ConfigError


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "synth",
        help="write the answer to PROMPT to an audio file (or one file per line of --prompts)",
        description="Write the answer to PROMPT to FILE as it is generated. WAV is streamed and "
        "valid even if the run is interrupted; other formats are encoded with ffmpeg at the end. "
        "With --prompts FILE --out-dir DIR, write one file per line of FILE and a manifest "
        "(manifest.json, manifest.csv) with each file's text, duration and timings.",
    )
    p.add_argument("prompt", nargs="?", help="what to ask (omit with --prompts)")
    p.add_argument("-o", "--output", metavar="FILE", help=f"audio file ({supported_formats()})")
    p.add_argument("--bitrate", metavar="RATE", help="bitrate for mp3/ogg/opus/m4a, e.g. 64k")
    p.add_argument(
        "--pause-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="extra silence between text chunks (default 0: engines end sentences with their own)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print timings after the run")
    b = p.add_argument_group("batch")
    b.add_argument("--prompts", metavar="FILE", help="prompts, one per line (# comments)")
    b.add_argument("--out-dir", metavar="DIR", help="where the files and the manifest go")
    b.add_argument(
        "--format", choices=FORMATS, default="wav", help="file format of a batch (default wav)"
    )
    b.add_argument(
        "--names",
        choices=("number", "slug"),
        default="number",
        help="file names: 001.wav (default) or 001-why-is-the-sky-blue.wav",
    )
    b.add_argument(
        "--concurrency",
        type=int,
        default=2,
        metavar="N",
        help="prompts in flight at once (default 2: one's speech overlaps the next one's answer)",
    )
    add_pipeline_options(p)
    p.set_defaults(run=run, is_async=True, needs_prompt=False)


def check_args(args: argparse.Namespace) -> None:
    """Fail before loading any model when the options do not fit together."""
    if args.pause_ms < 0:
        raise ConfigError("--pause-ms must not be negative")
    if args.prompts is None:
        if args.out_dir is not None:
            raise ConfigError("--out-dir goes with --prompts FILE (for one prompt use -o FILE)")
        if args.prompt is None:
            raise ConfigError("the prompt is empty: say what the assistant should answer")
        require_prompt(args)  # empty, or not valid UTF-8
        if args.output is None:
            raise ConfigError("say where the audio goes: -o FILE")
        return
    if args.prompt is not None:
        raise ConfigError("give either a PROMPT or --prompts FILE, not both")
    if args.output is not None:
        raise ConfigError("with --prompts, name a folder with --out-dir DIR instead of -o")
    if args.out_dir is None:
        raise ConfigError("--prompts needs --out-dir DIR for the files")
    if args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    check_bitrate(args.bitrate, f".{args.format}")


async def run(args: argparse.Namespace) -> int:
    check_args(args)
    if args.prompts is not None:
        return await run_batch(args)
    sink = file_sink(args.output, bitrate=args.bitrate, smooth_joins=True, pause_ms=args.pause_ms)
    async with make_pipeline(args) as pipe:
        result = await pipe.speak(args.prompt, sink)
    await record_trace(args, result, "synth")
    m = result.metrics
    print(
        f"wrote {args.output}: {m.audio_ms / 1000:.1f} s of audio, {m.chunks} chunks, "
        f"TTFA {m.ttfa_ms or 0:.0f} ms, total {m.total_ms or 0:.0f} ms",
        file=sys.stderr,
    )
    if args.verbose:
        print_metrics(m, sys.stderr)
    return 0


async def run_batch(args: argparse.Namespace) -> int:
    """One file per prompt, a progress bar on stderr, a summary table, the manifest."""
    from pathlib import Path

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from voicepipe.apps.batch import plan_batch, synthesize_batch, write_manifest
    from voicepipe.apps.prompts import read_prompts

    items = plan_batch(read_prompts(args.prompts), args.out_dir, args.format, args.names)
    out_dir = Path(args.out_dir)
    try:
        await anyio.Path(out_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
    console = Console(stderr=True)
    started = time.perf_counter()
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=not console.is_terminal,
    ) as progress:
        task = progress.add_task("loading models", total=len(items))
        async with make_pipeline(args) as pipe:
            progress.update(task, description="synthesizing")

            def done(result: BatchResult) -> None:
                progress.advance(task)
                if not result.ok:
                    progress.console.print(f"[red]failed[/] {result.file}: {result.error}")

            results = await synthesize_batch(
                pipe,
                items,
                concurrency=args.concurrency,
                bitrate=args.bitrate,
                pause_ms=args.pause_ms,
                on_done=done,
            )
    wall = time.perf_counter() - started
    json_path, csv_path = write_manifest(
        results, out_dir, extra={"wall_s": round(wall, 2), "concurrency": args.concurrency}
    )
    print_summary(results, Console())
    failed = sum(not r.ok for r in results)
    audio = sum(r.duration_s for r in results)
    print(
        f"wrote {len(results) - failed} of {len(results)} files to {out_dir} "
        f"({audio:.1f} s of audio in {wall:.1f} s); manifest: {json_path}, {csv_path}",
        file=sys.stderr,
    )
    return EXIT_ERROR if failed else 0


def print_summary(results: list[BatchResult], console: Any) -> None:
    """The batch as a table: file, audio length, time to first audio, total, status."""
    from rich.table import Table

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    table = Table(title="voicepipe synth")
    for name, justify in [
        ("#", "right"),
        ("file", "left"),
        ("audio s", "right"),
        ("TTFA ms", "right"),
        ("total ms", "right"),
        ("status", "left"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in results:
        status = "ok" if r.ok else f"[red]failed: {r.error}[/]"
        table.add_row(
            str(r.number),
            r.file,
            f"{r.duration_s:.1f}",
            ms(r.timings_ms.get("ttfa_ms")),
            ms(r.timings_ms.get("total_ms")),
            status,
        )
    console.print(table)
