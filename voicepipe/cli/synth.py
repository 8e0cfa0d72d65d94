"""`voicepipe synth`: write the answer to an audio file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from voicepipe.audio.sinks import file_sink, supported_formats
from voicepipe.cli.common import add_pipeline_options, make_pipeline, print_metrics


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "synth",
        help="write the answer to PROMPT to an audio file",
        description="Write the answer to PROMPT to FILE as it is generated. WAV is streamed and "
        "valid even if the run is interrupted; other formats are encoded with ffmpeg at the end.",
    )
    p.add_argument("prompt", help="what to ask")
    p.add_argument(
        "-o", "--output", required=True, metavar="FILE", help=f"audio file ({supported_formats()})"
    )
    p.add_argument("--bitrate", metavar="RATE", help="bitrate for lossy formats, e.g. 64k")
    p.add_argument("-v", "--verbose", action="store_true", help="print timings after the run")
    add_pipeline_options(p)
    p.set_defaults(run=run, is_async=True, needs_prompt=True)


async def run(args: argparse.Namespace) -> int:
    sink = file_sink(args.output, bitrate=args.bitrate)
    async with make_pipeline(args) as pipe:
        result = await pipe.speak(args.prompt, sink)
    m = result.metrics
    print(
        f"wrote {args.output}: {m.audio_ms / 1000:.1f} s of audio, {m.chunks} chunks, "
        f"TTFA {m.ttfa_ms or 0:.0f} ms, total {m.total_ms or 0:.0f} ms",
        file=sys.stderr,
    )
    if args.verbose:
        print_metrics(m, sys.stderr)
    return 0
