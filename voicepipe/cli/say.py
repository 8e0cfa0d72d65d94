"""`voicepipe say`: speak the answer on the speakers (and optionally write it)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio

from voicepipe.audio.sinks.base import AudioSink
from voicepipe.audio.sinks.files import file_sink
from voicepipe.audio.sinks.tee import TeeSink
from voicepipe.cli.common import (
    add_lexicon_option,
    add_pipeline_options,
    err,
    make_pipeline,
    print_metrics,
    record_trace,
    with_lexicon,
)
from voicepipe.errors import NoDevice
from voicepipe.events import TextDelta

FALLBACK_WAV = "voicepipe-answer.wav"


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "say",
        help="speak the answer to PROMPT on the speakers",
        description="Speak the answer to PROMPT while the model writes it; the text is printed "
        f"as it comes. With no output device the audio goes to {FALLBACK_WAV}.",
    )
    p.add_argument(
        "prompt", nargs="?", help="what to ask (`-` or omitted with a pipe: read from stdin)"
    )
    p.add_argument("-o", "--output", metavar="FILE", help="also write the audio to FILE")
    p.add_argument("--device", metavar="NAME|INDEX", help="output device (voicepipe devices)")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the answer text")
    p.add_argument("-v", "--verbose", action="store_true", help="print timings after the run")
    add_pipeline_options(p)
    add_lexicon_option(p)
    p.set_defaults(run=run, is_async=True, needs_prompt=True, prompt_stdin=True)


async def speak(args: argparse.Namespace, sink: AudioSink, show_text: bool) -> None:
    """Run the pipeline into ``sink``, printing the answer as it is written."""
    pipe = with_lexicon(make_pipeline(args), args)
    async with pipe, pipe.run(args.prompt, sink) as run:
        async for event in run:
            if show_text and isinstance(event, TextDelta):
                sys.stdout.write(event.text)
                sys.stdout.flush()
    await record_trace(args, run, "say")
    if show_text:
        print()
    if args.verbose:
        print_metrics(run.metrics, sys.stderr)


async def run(args: argparse.Namespace) -> int:
    from voicepipe.audio.devices import resolve
    from voicepipe.audio.sinks.playback import PlaybackSink

    sinks: list[AudioSink] = []
    try:
        resolve(args.device, "output")
        sinks.append(PlaybackSink(args.device))
    except NoDevice as exc:
        if args.device is not None:
            raise
        reason = str(exc)
        if args.output:
            err(f"{reason}: writing the answer to {args.output} only")
        else:
            target = str(await anyio.Path(FALLBACK_WAV).absolute())
            err(f"{reason}: writing the answer to {target} instead (choose with -o FILE)")
            sinks.append(file_sink(target, smooth_joins=True))
    if args.output:
        # Smoothed like playback, so the file holds what the speakers play.
        sinks.append(file_sink(args.output, smooth_joins=True))
    if len(sinks) == 1:
        await speak(args, sinks[0], not args.quiet)
    else:
        # The tee's own task group feeds each sink at its pace: a slow disk cannot stall
        # the speakers, nor real-time playback hold back the file.
        async with TeeSink(*sinks) as tee:
            await speak(args, tee, not args.quiet)
    for s in sinks:
        if hasattr(s, "path"):
            print(f"wrote {s.path}", file=sys.stderr)
    return 0
