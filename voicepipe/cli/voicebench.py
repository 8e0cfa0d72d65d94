"""`voicepipe bench --voice FILE.wav`: voice-to-voice latency (the work: apps.voicebench)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio
from rich.markup import escape
from rich.table import Table

from voicepipe.apps.voicebench import (
    VOICE_STAGES,
    VoiceRun,
    bench_voice,
    load_utterance,
    voice_summary,
)
from voicepipe.cli.common import add_key_options, make_pipeline, stt_from_args
from voicepipe.lifecycle import aclose_all, prepare_all
from voicepipe.voice.classifiers import make_classifier

_LABELS = {
    "end_detected_ms": "end detected",
    "transcript_ms": "transcript",
    "first_token_ms": "first token",
    "first_audio_ms": "first audio",
}


def add_options(p: argparse.ArgumentParser) -> None:
    v = p.add_argument_group("voice to voice (--voice)")
    v.add_argument(
        "--voice",
        action="append",
        metavar="FILE",
        help="measure voice to voice instead: play FILE (WAV, or any format ffmpeg reads) as "
        "the user's utterance, repeatable; times are from the end of the speech",
    )
    v.add_argument(
        "--stt", metavar="SPEC", help="speech-to-text (default: local, or openai with --stt-url)"
    )
    v.add_argument("--stt-url", metavar="URL", help="base URL of a transcription server")
    add_key_options(v, ("stt",))
    v.add_argument("--vad", metavar="NAME", help="silero (default when installed), webrtc, energy")


def _progress(run: VoiceRun, warmup: bool) -> None:
    first = "-" if run.first_audio_ms is None else f"{run.first_audio_ms:.0f} ms"
    label = "warm-up" if warmup else "run"
    print(f"{label} {run.utterance}: {run.transcript!r} -> first audio {first}", file=sys.stderr)


async def run(args: argparse.Namespace) -> int:
    utterances = [await load_utterance(path) for path in args.voice]
    transcriber = stt_from_args(args)
    make_classifier(args.vad)  # an unknown or missing detector fails before the models load
    pipe = make_pipeline(args)
    print("loading models...", file=sys.stderr)
    await prepare_all([pipe, transcriber])
    try:
        async with pipe:
            done = await bench_voice(
                pipe,
                transcriber,
                utterances,
                n=args.n,
                warmup=args.warmup,
                classifier=lambda: make_classifier(args.vad),
                on_run=_progress,
            )
    finally:
        await aclose_all([transcriber])
    table = Table(title="voice to voice: ms from the end of the user's speech")
    table.add_column("utterance")
    for name in VOICE_STAGES:
        table.add_column(f"{_LABELS[name]} p50 / p95", justify="right")
    table.add_column("heard")
    report: list[dict[str, Any]] = []
    for u in done:
        summary = voice_summary(u.runs)
        cells = []
        for name in VOICE_STAGES:
            s = summary[name]
            cells.append("-" if s["p50"] is None else f"{s['p50']:.0f} / {s['p95']:.0f}")
        heard = sum(1 for r in u.runs if r.transcript)
        table.add_row(escape(u.name), *cells, f"{heard}/{len(u.runs)}")
        report.append(
            {"utterance": u.name, "runs": [r.__dict__ for r in u.runs], "summary": summary}
        )
    from rich.console import Console

    Console().print(table)
    if args.json:
        await anyio.Path(args.json).write_text(json.dumps({"voice": report}, indent=2))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
