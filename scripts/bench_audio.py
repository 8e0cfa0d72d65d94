"""Audio-out benchmarks: memory over a long stream, stop latency, CPU of the playback path.

    .venv/bin/python scripts/bench_audio.py                 # all three, default sizes
    .venv/bin/python scripts/bench_audio.py memory --minutes 30 --speed 60
    .venv/bin/python scripts/bench_audio.py stop --n 100
    .venv/bin/python scripts/bench_audio.py cpu --seconds 20

memory: a long answer through the whole pipeline (text source, a fast tone engine, the
  bounded queue) into a null sink paced at ``speed`` times real time, so the queue fills
  and backpressure works as in real playback; RSS is sampled as audio flows.
stop and cpu: real PortAudio on a real-time paced device (ALSA's `file` plugin into a FIFO
  drained at the sample rate by a reader thread, as the tests use): the time from
  ``abort()`` to the stream being closed, the time until the last audible sample reached
  the device, and the process CPU time (event loop + PortAudio's thread) per minute played.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import AsyncGenerator
from pathlib import Path

import anyio
import numpy as np

from voicepipe.lifecycle import Lifecycle

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicepipe.audio.chunk import AudioChunk  # noqa: E402
from voicepipe.llm.text import TextSource  # noqa: E402
from voicepipe.metrics import percentile  # noqa: E402
from voicepipe.pipeline import Pipeline  # noqa: E402


def rss_mb() -> float:
    """Resident set size of this process, from /proc (MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class ToneEngine(Lifecycle):
    """A fast TTS stand-in: 0.4 s of tone per word at 22.05 kHz, in 0.5 s pieces."""

    name = "tone"
    sample_rate = 22050

    async def synthesize(self, text: str, text_index: int = 0) -> AsyncGenerator[AudioChunk, None]:
        # Piece by piece, so the stand-in's own arrays stay small and RSS shows the pipeline.
        n = int(self.sample_rate * 0.4 * max(1, len(text.split())))
        freq = 200 + zlib.crc32(text.encode()) % 600
        step = self.sample_rate // 2
        for start in range(0, n, step):
            await anyio.lowlevel.checkpoint()
            t = np.arange(start, min(n, start + step)) / self.sample_rate
            samples = (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)
            yield AudioChunk(samples, self.sample_rate, text_index)


class PacedNullSink:
    """Plays audio on a virtual clock running ``speed`` times real time, keeping at most
    ``max_buffer_s`` (virtual) buffered like ``PlaybackSink``: backpressure stays honest."""

    def __init__(self, speed: float, max_buffer_s: float = 0.5) -> None:
        self.speed = speed
        self.max_buffer_s = max_buffer_s
        self.seconds = 0.0
        self._origin = 0.0
        self.on_write: list[float] = []

    def _played(self) -> float:
        return (time.perf_counter() - self._origin) * self.speed

    async def start(self) -> None:
        self._origin = time.perf_counter()

    async def write(self, chunk: AudioChunk) -> None:
        self.seconds = max(self.seconds, self._played()) + chunk.duration
        excess = self.buffered_seconds() - self.max_buffer_s
        if excess > 0:
            await anyio.sleep(excess / self.speed)

    async def finish(self) -> None:
        await anyio.sleep(self.buffered_seconds() / self.speed)

    async def abort(self) -> None:
        pass

    def buffered_seconds(self) -> float:
        return max(0.0, self.seconds - self._played())

    def take_underruns(self) -> list[tuple[float, float]]:
        return []


async def bench_memory(minutes: float, speed: float) -> dict[str, float]:
    sentence = "This is sentence number {} of a long answer that goes on and on."
    words_needed = int(minutes * 60 / 0.4)
    count = words_needed // len(sentence.split()) + 1
    text = " ".join(sentence.format(i) for i in range(count))
    sink = PacedNullSink(speed)
    samples: list[tuple[float, float]] = []  # (audio seconds, RSS MB)
    async with Pipeline(TextSource(0), ToneEngine()) as pipe:  # type: ignore[arg-type]
        start_rss = rss_mb()
        started = time.perf_counter()
        async with pipe.run(text, sink) as run:
            async for _ in run:
                if not samples or run.audio_seconds - samples[-1][0] >= 10:
                    samples.append((run.audio_seconds, rss_mb()))
        wall = time.perf_counter() - started
    warm = next((rss for audio, rss in samples if audio >= 60), samples[0][1])
    end = rss_mb()
    return {
        "audio_minutes": round(run.audio_seconds / 60, 1),
        "wall_s": round(wall, 1),
        "rss_start_mb": round(start_rss, 1),
        "rss_after_1min_audio_mb": round(warm, 1),
        "rss_peak_mb": round(max(r for _, r in samples), 1),
        "rss_end_mb": round(end, 1),
        "growth_after_1min_mb": round(max(r for _, r in samples) - warm, 1),
        "growth_total_mb": round(max(max(r for _, r in samples), end) - start_rss, 1),
    }


STOP_CHILD = """
import json, sys, time
import anyio, numpy as np
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.playback import PlaybackSink

n = int(sys.argv[1])
tone = (np.sin(2 * np.pi * 440 * np.arange(4800) / 48000) * 12000).astype(np.int16)

async def main():
    out = []
    for k in range(n):
        sink = PlaybackSink()
        await sink.start()
        for i in range(8 + k % 5):  # 0.8-1.2 s written; stop somewhere in it
            await sink.write(AudioChunk(tone, 48000, i))
        called = time.time()
        await sink.abort()
        out.append((called, time.time()))
        await anyio.sleep(0.3)  # a silent gap between takes, so each stop is found alone
    print(json.dumps(out))

anyio.run(main)
"""

CPU_CHILD = """
import json, sys, time
import anyio, numpy as np
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.playback import PlaybackSink

seconds = float(sys.argv[1])
rate = 22050
t = np.arange(rate // 4) / rate
piece = (np.sin(2 * np.pi * 330 * t) * 8000).astype(np.int16)  # 0.25 s pieces, like an engine

async def main():
    sink = PlaybackSink()
    await sink.start()
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(int(seconds * 4)):
        await sink.write(AudioChunk(piece, rate, i // 4))
    await sink.finish()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "audio_s": seconds,
                      "underruns": len(sink.take_underruns())}))

anyio.run(main)
"""


def paced_device(tmp: Path) -> object:
    from tests.audio.conftest import PacedDevice

    return PacedDevice(tmp)


def bench_stop(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        device = paced_device(Path(tmp))
        try:
            result = subprocess.run(
                [sys.executable, "-c", STOP_CHILD, str(n)],
                env=device.env,  # type: ignore[attr-defined]
                capture_output=True,
                text=True,
                timeout=120,
                cwd=ROOT,
            )
            if result.returncode:
                raise SystemExit(result.stderr)
            stops = json.loads(result.stdout)
            times, frames = device.played()  # type: ignore[attr-defined]
        finally:
            device.close()  # type: ignore[attr-defined]
    loud_times = times[np.abs(frames) > 100]
    closed_ms, heard_ms = [], []
    for called, closed in stops:
        closed_ms.append((closed - called) * 1000)
        window = loud_times[(loud_times > called - 1.0) & (loud_times < called + 0.25)]
        heard_ms.append((window.max() - called) * 1000 if len(window) else 0.0)
    return {
        "interruptions": n,
        "abort_to_closed_p50_ms": round(percentile(closed_ms, 50), 1),
        "abort_to_closed_p95_ms": round(percentile(closed_ms, 95), 1),
        "abort_to_closed_max_ms": round(max(closed_ms), 1),
        "last_sound_after_abort_p50_ms": round(percentile(heard_ms, 50), 1),
        "last_sound_after_abort_p95_ms": round(percentile(heard_ms, 95), 1),
        "last_sound_after_abort_max_ms": round(max(heard_ms), 1),
    }


def bench_cpu(seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        device = paced_device(Path(tmp))
        try:
            result = subprocess.run(
                [sys.executable, "-c", CPU_CHILD, str(seconds)],
                env=device.env,  # type: ignore[attr-defined]
                capture_output=True,
                text=True,
                timeout=seconds * 3 + 60,
                cwd=ROOT,
            )
        finally:
            device.close()  # type: ignore[attr-defined]
    if result.returncode:
        raise SystemExit(result.stderr)
    r = json.loads(result.stdout)
    return {
        "audio_s": r["audio_s"],
        "wall_s": round(r["wall_s"], 2),
        "cpu_s": round(r["cpu_s"], 3),
        "cpu_s_per_audio_minute": round(r["cpu_s"] / r["audio_s"] * 60, 3),
        "cpu_percent_of_one_core": round(100 * r["cpu_s"] / r["wall_s"], 2),
        "underruns": r["underruns"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "which",
        nargs="*",
        metavar="{memory,stop,cpu}",
        help="which benchmarks to run (default: all)",
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="memory: audio minutes")
    parser.add_argument("--speed", type=float, default=60.0, help="memory: times real time")
    parser.add_argument("--n", type=int, default=100, help="stop: interruptions (100)")
    parser.add_argument("--seconds", type=float, default=20.0, help="cpu: audio seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    which = args.which or ["memory", "stop", "cpu"]
    unknown = sorted(set(which) - {"memory", "stop", "cpu"})
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    results: dict[str, dict[str, float]] = {}
    for name in which:
        if name == "memory":
            results[name] = anyio.run(bench_memory, args.minutes, args.speed)
        elif name == "stop":
            results[name] = bench_stop(args.n)
        else:
            results[name] = bench_cpu(args.seconds)
        if not args.json:
            print(f"== {name}")
            for key, value in results[name].items():
                print(f"  {key:32} {value}")
            sys.stdout.flush()
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
