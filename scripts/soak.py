"""Soak: many turns through the pipeline with random interruptions and provider faults.

Fast local providers (a paced TextSource, a tone TTS) so hours of conversation fit in
seconds; every few turns the answer is cut off (a cancel scope: barge-in) or a provider
fails mid-stream. RSS, open fds, threads and asyncio tasks are sampled after a warm-up and
at the end; the run fails if any grew beyond a small allowance.

    .venv/bin/python scripts/soak.py --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import numpy as np

from voicepipe import Pipeline, WavFileSink
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.null import NullSink
from voicepipe.errors import ProviderError, StreamInterrupted
from voicepipe.lifecycle import Lifecycle
from voicepipe.llm.base import Message
from voicepipe.llm.text import TextSource

ANSWER = (
    "Sure. Here is what I know about that, in a few sentences. The first part is short. "
    "The second part, which is longer, goes on for a while with commas, clauses and more. "
    "Finally, the answer ends here."
)


class FlakyText(TextSource):
    """TextSource that sometimes fails after a few words (a dropped stream)."""

    fail_after: int | None = None

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        count = 0
        async for token in super().stream(messages):
            if self.fail_after is not None and count == self.fail_after:
                raise StreamInterrupted("soak: the LLM stream dropped", provider="soak")
            count += 1
            yield token


class ToneEngine(Lifecycle):
    """A fast TTS: 20 ms of tone per word, in two pieces; sometimes fails."""

    name = "tone"
    sample_rate = 16000
    fail: bool = False

    async def synthesize(self, text: str, text_index: int = 0) -> AsyncGenerator[AudioChunk, None]:
        if self.fail:
            raise ProviderError("soak: the TTS failed", provider="soak")
        n = int(self.sample_rate * 0.02 * max(1, len(text.split())))
        samples = (np.sin(np.arange(n) * 0.05) * 8000).astype(np.int16)
        for part in np.array_split(samples, 2):
            await anyio.lowlevel.checkpoint()
            yield AudioChunk(part, self.sample_rate, text_index)


@dataclass
class Sample:
    rss_kb: int
    fds: int
    threads: int
    tasks: int

    def __str__(self) -> str:
        rss = f"RSS {self.rss_kb / 1024:.1f} MB"
        return f"{rss}, fds {self.fds}, threads {self.threads}, tasks {self.tasks}"


def sample() -> Sample:
    gc.collect()
    rss = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return Sample(
        rss_kb=rss,
        fds=len(os.listdir("/proc/self/fd")),
        threads=threading.active_count(),
        tasks=len(asyncio.all_tasks()),  # measurement only: anyio has no public count
    )


@dataclass
class Tally:
    turns: int = 0
    completed: int = 0
    interrupted: int = 0
    llm_faults: int = 0
    tts_faults: int = 0


async def turn(pipe: Pipeline, llm: FlakyText, tts: ToneEngine, rng: random.Random, folder: Path,
               tally: Tally) -> None:  # fmt: skip
    roll = rng.random()
    llm.fail_after = rng.randrange(1, 20) if roll < 0.15 else None
    tts.fail = 0.15 <= roll < 0.25
    interrupt = rng.uniform(0.0, 0.05) if 0.25 <= roll < 0.5 else None
    sink = WavFileSink(folder / "turn.wav") if rng.random() < 0.3 else NullSink(realtime=False)
    tally.turns += 1
    try:
        if interrupt is not None:
            with anyio.move_on_after(interrupt) as scope:
                await pipe.speak(ANSWER, sink)
            tally.interrupted += scope.cancelled_caught
            tally.completed += not scope.cancelled_caught
        else:
            await pipe.speak(ANSWER, sink)
            tally.completed += 1
    except StreamInterrupted:
        tally.llm_faults += 1
    except ProviderError:
        tally.tts_faults += 1


async def soak(seconds: float, seed: int) -> tuple[Sample, Sample, Tally]:
    rng = random.Random(seed)
    llm = FlakyText(tokens_per_second=2000)
    tts = ToneEngine()
    tally = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        async with Pipeline(llm, tts) as pipe:
            for _ in range(20):  # warm-up: imports, caches, the thread pool
                await turn(pipe, llm, tts, rng, Path(tmp), Tally())
            start = sample()
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                await turn(pipe, llm, tts, rng, Path(tmp), tally)
            end = sample()
    return start, end, tally


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to soak (30)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rss-growth-mb", type=float, default=8.0, help="allowed RSS growth")
    args = parser.parse_args(argv)
    start, end, tally = anyio.run(soak, args.seconds, args.seed)
    print(
        f"{tally.turns} turns: {tally.completed} completed, {tally.interrupted} interrupted, "
        f"{tally.llm_faults} LLM faults, {tally.tts_faults} TTS faults"
    )
    print(f"start: {start}")
    print(f"end:   {end}")
    grew = [
        name
        for name, ok in (
            ("RSS", end.rss_kb - start.rss_kb <= args.rss_growth_mb * 1024),
            ("fds", end.fds <= start.fds),
            ("threads", end.threads <= start.threads),
            ("tasks", end.tasks <= start.tasks),
        )
        if not ok
    ]
    if grew:
        print(f"soak: grew: {', '.join(grew)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
