"""Soak: many turns through the pipeline with random interruptions and provider faults.

Fast local providers (a paced TextSource, a tone TTS) so hours of conversation fit in
seconds; every few turns the answer is cut off (a cancel scope: barge-in) or a provider
fails mid-stream. RSS, open fds, threads and asyncio tasks are sampled after a warm-up,
every ``--every`` seconds (on stderr as they come, so a long soak shows its trend; all of
them on stdout at the end, after the tally) and at the end; the run fails if any grew
beyond a small allowance (RSS: the largest sample against the first).

With ``--serve`` the same turns go through `voicepipe serve`'s app over loopback HTTP (its
uvicorn configuration, in this process and event loop, so the samples cover server and
client): chat streams and speech requests, a barge-in being the client hanging up mid-answer.

    .venv/bin/python scripts/soak.py --seconds 60
    .venv/bin/python scripts/soak.py --seconds 1800 --every 300 --rss-growth-mb 20 [--serve]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import math
import os
import random
import socket
import sys
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
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


Turn = Callable[[random.Random, Path, Tally], Awaitable[None]]


class _Server:
    """`voicepipe serve`'s app on its uvicorn configuration, in this event loop."""

    def __init__(self, llm: FlakyText, tts: ToneEngine) -> None:
        import uvicorn

        from voicepipe.apps.server.app import ServerSettings, create_app
        from voicepipe.apps.server.serving import server_config

        settings = ServerSettings(rate_per_minute=0, prepare_on_startup=False)
        self.app = create_app(llm, tts, settings)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = server_config(self.app, host="127.0.0.1", port=self.port, lifespan="off")
        self.server = uvicorn.Server(config)


@asynccontextmanager
async def http_turns(llm: FlakyText, tts: ToneEngine) -> AsyncIterator[tuple[Turn, Turn]]:
    """Turns through the server; yields the turn and a wait until no session is left."""
    import httpx

    served = _Server(llm, tts)
    sessions = served.app.state.server.sessions
    logging.getLogger("voicepipe.apps.server").setLevel(logging.ERROR)  # the faults are planned
    # A new connection per turn: none kept in a pool, so open descriptors compare between
    # samples, and connections are made and closed as often as turns.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(served.server.serve)
        base = f"http://127.0.0.1:{served.port}"
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
            for _ in range(200):
                try:
                    await client.get("/healthz")
                    break
                except httpx.TransportError:
                    await anyio.sleep(0.05)  # still starting

            async def one(rng: random.Random, folder: Path, tally: Tally) -> None:
                roll = rng.random()
                llm.fail_after = rng.randrange(1, 20) if roll < 0.15 else None
                tts.fail = 0.15 <= roll < 0.25
                interrupt = rng.uniform(0.0, 0.05) if 0.25 <= roll < 0.5 else math.inf
                speech = rng.random() < 0.2 and roll >= 0.15  # the LLM is not in speech
                tally.turns += 1
                path, body = ("/v1/chat/stream", {"prompt": ANSWER})
                if speech:
                    path, body = ("/v1/audio/speech", {"input": ANSWER, "response_format": "pcm"})
                text = ""
                with anyio.move_on_after(interrupt) as scope:
                    async with client.stream("POST", path, json=body) as r:
                        if r.status_code == 502:
                            tally.tts_faults += 1
                            return
                        async for chunk in r.aiter_text():
                            if not speech:
                                text += chunk
                if scope.cancelled_caught:  # the client hung up: a barge-in
                    tally.interrupted += 1
                elif '"stage":"llm"' in text:
                    tally.llm_faults += 1
                elif '"stage":"tts"' in text:
                    tally.tts_faults += 1
                else:
                    tally.completed += 1

            async def settle(*_: object) -> None:
                await anyio.to_thread.run_sync(sessions.idle.wait, 10)

            yield one, settle
        served.server.should_exit = True


@asynccontextmanager
async def pipeline_turns(llm: FlakyText, tts: ToneEngine) -> AsyncIterator[tuple[Turn, Turn]]:
    async with Pipeline(llm, tts) as pipe:

        async def one(rng: random.Random, folder: Path, tally: Tally) -> None:
            await turn(pipe, llm, tts, rng, folder, tally)

        async def settle(*_: object) -> None:
            pass

        yield one, settle


async def soak(
    seconds: float, seed: int, every: float, serve: bool = False
) -> tuple[list[tuple[str, Sample]], Tally]:
    """Turns for ``seconds``; the samples taken at the start, every ``every`` s and the end."""
    rng = random.Random(seed)
    llm = FlakyText(tokens_per_second=2000)
    tts = ToneEngine()
    tally = Tally()
    samples: list[tuple[str, Sample]] = []

    def take(label: str) -> None:
        samples.append((label, sample()))
        print(f"{label:>7}: {samples[-1][1]}  ({tally.turns} turns)", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        async with AsyncExitStack() as stack:
            turns = http_turns(llm, tts) if serve else pipeline_turns(llm, tts)
            one, settle = await stack.enter_async_context(turns)
            folder = Path(tmp)
            for _ in range(20):  # warm-up: imports, caches, the thread pool
                await one(rng, folder, Tally())
            await settle(rng, folder, tally)
            take("start")
            began = time.monotonic()
            deadline = began + seconds
            due = began + every
            while time.monotonic() < deadline:
                await one(rng, folder, tally)
                if time.monotonic() >= due and time.monotonic() < deadline:
                    await settle(rng, folder, tally)
                    take(f"{time.monotonic() - began:.0f} s")
                    due += every
            await settle(rng, folder, tally)
            take("end")
    return samples, tally


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to soak (30)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--every", type=float, default=300.0, help="sample every S s (300)")
    parser.add_argument("--rss-growth-mb", type=float, default=8.0, help="allowed RSS growth")
    parser.add_argument("--serve", action="store_true", help="through the HTTP server")
    args = parser.parse_args(argv)
    samples, tally = anyio.run(soak, args.seconds, args.seed, args.every, args.serve)
    start, end = samples[0][1], samples[-1][1]
    peak = max(s.rss_kb for _, s in samples)
    print(
        f"{tally.turns} turns: {tally.completed} completed, {tally.interrupted} interrupted, "
        f"{tally.llm_faults} LLM faults, {tally.tts_faults} TTS faults"
    )
    for label, taken in samples:
        print(f"{label + ':':8} {taken}")
    print(f"RSS growth: {(end.rss_kb - start.rss_kb) / 1024:+.1f} MB at the end, "
          f"{(peak - start.rss_kb) / 1024:+.1f} MB at the peak")  # fmt: skip
    grew = [
        name
        for name, ok in (
            ("RSS", peak - start.rss_kb <= args.rss_growth_mb * 1024),
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
