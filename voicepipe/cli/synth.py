"""`voicepipe synth`: write the answer to an audio file, or one file per prompt of a list."""

from __future__ import annotations

import argparse
import functools
import sys
import time
from typing import Any

import anyio
from rich.markup import escape

from voicepipe.apps.batch import FORMATS, BatchResult
from voicepipe.audio.sinks.files import file_sink, supported_formats
from voicepipe.audio.sinks.paths import check_bitrate
from voicepipe.cli.common import (
    EXIT_ERROR,
    add_lexicon_option,
    add_pipeline_options,
    make_pipeline,
    print_metrics,
    record_trace,
    require_prompt,
    with_lexicon,
)
from voicepipe.errors import ConfigError
from voicepipe.pipeline import Pipeline


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "synth",
        help="write the answer to PROMPT to an audio file (or one file per line of --prompts)",
        description="Write the answer to PROMPT to FILE as it is generated. WAV is streamed and "
        "valid even if the run is interrupted; other formats are encoded with ffmpeg at the end. "
        "With --prompts FILE --out-dir DIR, write one file per line of FILE and a manifest "
        "(manifest.json, manifest.csv) with each file's text, duration and timings. A rerun "
        "into the same DIR keeps the files already done (manifest.jsonl, written as items "
        "finish) and does the rest; --ray spreads the prompts over a pool of Ray workers.",
    )
    p.add_argument(
        "prompt",
        nargs="?",
        help="what to ask (`-` or omitted with a pipe: read from stdin; omit with --prompts)",
    )
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
        choices=("number", "slug", "id"),
        default="number",
        help="file names: 001.wav (default), 001-why-is-the-sky-blue.wav, or 3f2a9c0d41be.wav "
        "(a hash of the prompt and settings: names that survive edits to the prompts file)",
    )
    b.add_argument(
        "--concurrency",
        type=int,
        default=None,
        metavar="N",
        help="prompts in flight at once (default 2: one's speech overlaps the next one's answer; "
        "with --ray: on each worker, default 1)",
    )
    b.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="do every prompt again, even those whose files from an earlier run are complete",
    )
    r = p.add_argument_group("batch on Ray (pip install 'voicepipe[ray]')")
    r.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run the batch on Ray workers: the cluster at ADDRESS (HOST:PORT, ray://HOST:PORT, "
        "auto), or a local cluster without one; --out-dir must be a path every worker reaches",
    )
    r.add_argument("--workers", type=int, default=2, metavar="N", help="Ray workers (default 2)")
    r.add_argument(
        "--worker-cpus",
        type=float,
        default=1.0,
        metavar="N",
        help="CPUs each Ray worker reserves (default 1)",
    )
    r.add_argument(
        "--retries",
        type=int,
        default=2,
        metavar="N",
        help="times an item whose worker died is tried again on another (default 2)",
    )
    add_pipeline_options(p)
    add_lexicon_option(p)
    p.set_defaults(run=run, is_async=True, needs_prompt=False, prompt_stdin=True)


def check_args(args: argparse.Namespace) -> None:
    """Fail before loading any model when the options do not fit together."""
    if args.pause_ms < 0:
        raise ConfigError("--pause-ms must not be negative")
    if args.prompts is None:
        if args.out_dir is not None:
            raise ConfigError("--out-dir goes with --prompts FILE (for one prompt use -o FILE)")
        if args.ray is not None:
            raise ConfigError("--ray goes with --prompts FILE --out-dir DIR")
        require_prompt(args)  # missing, empty, or not valid UTF-8
        if args.output is None:
            raise ConfigError("say where the audio goes: -o FILE")
        return
    if args.prompt is not None:
        raise ConfigError("give either a PROMPT or --prompts FILE, not both")
    if args.output is not None:
        raise ConfigError("with --prompts, name a folder with --out-dir DIR instead of -o")
    if args.out_dir is None:
        raise ConfigError("--prompts needs --out-dir DIR for the files")
    if args.concurrency is not None and args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if args.ray is None:
        for flag, given in [
            ("--workers", args.workers != 2),
            ("--worker-cpus", args.worker_cpus != 1.0),
            ("--retries", args.retries != 2),
        ]:
            if given:
                raise ConfigError(f"{flag} goes with --ray")
    elif args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    elif not args.worker_cpus > 0:
        raise ConfigError("--worker-cpus must be more than 0")
    elif args.retries < 0:
        raise ConfigError("--retries must not be negative")
    check_bitrate(args.bitrate, f".{args.format}")


async def run(args: argparse.Namespace) -> int:
    check_args(args)
    if args.prompts is not None:
        return await run_batch(args)
    sink = file_sink(args.output, bitrate=args.bitrate, smooth_joins=True, pause_ms=args.pause_ms)
    async with with_lexicon(make_pipeline(args), args) as pipe:
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
    """One file per prompt, a progress bar on stderr, a summary table, the manifest.

    Files an earlier run finished (journal row, same prompt and settings, audio intact) are
    kept; the rest are made here, or on Ray workers with --ray.
    """
    from pathlib import Path

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from voicepipe.apps.batch import plan_batch, remove_partials, synthesize_batch, write_manifest
    from voicepipe.apps.prompts import read_prompts
    from voicepipe.apps.resume import JOURNAL, Journal, ResumePlan, plan_resume

    settings = batch_settings(args)
    items = plan_batch(read_prompts(args.prompts), args.out_dir, args.format, args.names, settings)
    out_dir = Path(args.out_dir)
    try:
        await anyio.Path(out_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
    console = Console(stderr=True)
    if args.resume:
        plan = await plan_resume(items, out_dir)
    else:
        plan = ResumePlan(todo=list(items))
    overwritten = {i.path.name for i in plan.todo}
    for line in plan.messages(overwritten):
        console.print(escape(line), highlight=False, soft_wrap=True)
    await anyio.to_thread.run_sync(remove_partials, items)
    concurrency = args.concurrency or (1 if args.ray is not None else 2)
    if args.ray is not None and plan.todo:
        from voicepipe.apps.raybatch import connect

        await anyio.to_thread.run_sync(connect, args.ray or None, args.workers * args.worker_cpus)
    started = time.perf_counter()
    with (
        Journal(out_dir / JOURNAL, fresh=not args.resume) as journal,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=not console.is_terminal,
        ) as progress,
    ):
        task = progress.add_task("loading models", total=len(items), completed=len(plan.kept))

        def done(result: BatchResult) -> None:
            progress.advance(task)
            if not result.ok:
                # Provider text may hold rich markup ("[/x]"): it is shown, never parsed.
                failed = f"{escape(result.file)}: {escape(result.error or '')}"
                progress.console.print(f"[red]failed[/] {failed}")

        if not plan.todo:
            made: list[BatchResult] = []
        elif args.ray is not None:
            from voicepipe.apps.raybatch import synthesize_batch_ray

            def event(message: str) -> None:
                if message.startswith("worker") and "ready" in message:
                    progress.update(task, description="synthesizing")
                progress.console.print(escape(message), highlight=False, soft_wrap=True)

            progress.update(task, description="starting Ray workers")
            made = await synthesize_batch_ray(
                functools.partial(worker_pipeline, vars(args)),
                plan.todo,
                address=args.ray or None,
                workers=args.workers,
                concurrency=concurrency,
                worker_cpus=args.worker_cpus,
                retries=args.retries,
                bitrate=args.bitrate,
                pause_ms=args.pause_ms,
                on_done=done,
                on_event=event,
                journal=journal,
            )
        else:
            async with with_lexicon(make_pipeline(args), args) as pipe:
                progress.update(task, description="synthesizing")
                made = await synthesize_batch(
                    pipe,
                    plan.todo,
                    concurrency=concurrency,
                    bitrate=args.bitrate,
                    pause_ms=args.pause_ms,
                    on_done=done,
                    journal=journal,
                )
    wall = time.perf_counter() - started
    by_id = {r.id: r for r in [*plan.kept, *made]}
    results = [by_id[i.id] for i in items if i.id in by_id]
    extra: dict[str, Any] = {
        "wall_s": round(wall, 2),
        "concurrency": concurrency,
        "kept": len(plan.kept),
    }
    if args.ray is not None:
        extra.update(ray=args.ray or "local", workers=args.workers)
    json_path, csv_path = write_manifest(results, out_dir, extra=extra)
    print_summary(results, Console())
    failed = sum(not r.ok for r in results)
    audio = sum(r.duration_s for r in made)
    kept = f", {len(plan.kept)} kept from an earlier run" if plan.kept else ""
    print(
        f"wrote {len(results) - failed} of {len(results)} files to {out_dir}{kept} "
        f"({audio:.1f} s of audio made in {wall:.1f} s); manifest: {json_path}, {csv_path}",
        file=sys.stderr,
    )
    return EXIT_ERROR if failed else 0


def batch_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What shapes a batch item's audio, for its id: a change makes a rerun redo the files.

    Providers, models, voice and sampling options, and the lexicon's contents (by hash);
    never a key nor the name of its variable.
    """
    import hashlib
    from pathlib import Path

    keys = (
        "llm",
        "llm_url",
        "tts",
        "tts_url",
        "chunking",
        "system",
        "max_tokens",
        "temperature",
        "seed",
        "tts_speed",
        "tts_format",
        "tts_instructions",
        "bitrate",
        "pause_ms",
    )
    settings = {k: getattr(args, k, None) for k in keys}
    lexicon = getattr(args, "lexicon", None)
    if lexicon:
        try:
            settings["lexicon"] = hashlib.sha256(Path(lexicon).read_bytes()).hexdigest()
        except OSError as exc:
            raise ConfigError(f"cannot read lexicon {lexicon}: {exc.strerror or exc}") from exc
    return settings


def worker_pipeline(options: dict[str, Any]) -> Pipeline:
    """The pipeline the options describe, built where it runs (on a Ray worker).

    Keys come from the worker's own environment (``--llm-key-env`` names the variable), so
    they are never sent with the work.
    """
    args = argparse.Namespace(**options)
    return with_lexicon(make_pipeline(args), args)


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
        status = "ok" if r.ok else f"[red]failed: {escape(r.error or '')}[/]"
        table.add_row(
            str(r.number),
            escape(r.file),
            f"{r.duration_s:.1f}",
            ms(r.timings_ms.get("ttfa_ms")),
            ms(r.timings_ms.get("total_ms")),
            status,
        )
    console.print(table)
