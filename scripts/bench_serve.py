"""Load-test `voicepipe serve` on loopback: sessions per second, TTFA the server adds, memory.

The server runs in a child process (uvicorn, one worker) with a fast provider configuration:
TextSource (no model) and a tone engine that synthesizes at once, so what is measured is the
server: HTTP, SSE framing, base64, session bookkeeping. For each concurrency level it reports
sessions per second and the p50/p95 of the TTFA overhead the server adds:

    client TTFA   request sent -> first audio event parsed by the client
    pipeline TTFA LLM request  -> first audio handed to the sink (the metrics event)
    overhead      client TTFA - pipeline TTFA (HTTP, parsing, scheduling, the event loop)

Then the server's resident memory after 10 sessions and after 1,000 (a leak shows as growth).

Run: .venv/bin/python scripts/bench_serve.py [--levels 1,10,50] [--sessions 200]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import sys
import time
from collections.abc import AsyncGenerator
from pathlib import Path

import anyio
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voicepipe.audio.chunk import AudioChunk
from voicepipe.metrics import percentile

PROMPT = "Hello there, this is a load test. It has two sentences, and then it ends."


class InstantTone:
    """A TTS engine that costs nothing: a 440 Hz tone, 60 ms per word, in two pieces."""

    name = "tone"
    sample_rate = 16000

    async def synthesize(self, text: str, text_index: int = 0) -> AsyncGenerator[AudioChunk, None]:
        n = int(self.sample_rate * 0.06 * max(1, len(text.split())))
        samples = (np.sin(np.arange(n) * 2 * np.pi * 440 / self.sample_rate) * 8000).astype(
            np.int16
        )
        for part in np.array_split(samples, 2):
            yield AudioChunk(part, self.sample_rate, text_index)


def serve_forever(port: int) -> None:
    """The child process: the app on uvicorn."""
    import uvicorn

    from voicepipe.apps.server.app import ServerSettings, create_app
    from voicepipe.llm.text import TextSource

    app = create_app(TextSource(0), InstantTone(), ServerSettings(max_sessions=256))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def session(client: httpx.AsyncClient) -> tuple[float, float]:
    """One conversation; returns (client TTFA ms, pipeline TTFA ms)."""
    sent = time.perf_counter()
    first_audio: float | None = None
    metrics: dict[str, float] = {}
    event = ""
    async with client.stream("POST", "/v1/chat/stream", json={"prompt": PROMPT}) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                if event == "audio" and first_audio is None:
                    json.loads(line[6:])
                    first_audio = time.perf_counter()
                elif event == "metrics":
                    metrics = json.loads(line[6:])
                elif event == "error":
                    raise RuntimeError(line)
    assert first_audio is not None
    return (first_audio - sent) * 1000, float(metrics["ttfa_ms"])


async def load(base: str, concurrency: int, sessions: int) -> dict[str, float]:
    """``sessions`` conversations, ``concurrency`` at a time."""
    results: list[tuple[float, float]] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        counter = iter(range(sessions))

        async def worker() -> None:
            for _ in counter:
                results.append(await session(client))

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
        elapsed = time.perf_counter() - started
    client_ttfa = [c for c, _ in results]
    overhead = [c - p for c, p in results]
    return {
        "concurrency": concurrency,
        "sessions": sessions,
        "sessions_per_s": sessions / elapsed,
        "client_ttfa_p50_ms": percentile(client_ttfa, 50),
        "client_ttfa_p95_ms": percentile(client_ttfa, 95),
        "overhead_p50_ms": percentile(overhead, 50),
        "overhead_p95_ms": percentile(overhead, 95),
    }


async def main(args: argparse.Namespace) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    child = await anyio.open_process([sys.executable, __file__, "--child", str(port)], stdout=None)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(200):
                try:
                    if (await client.get("/healthz")).is_success:
                        break
                except httpx.TransportError:
                    await anyio.sleep(0.05)  # the child is still starting
        await load(base, 10, 10)  # warm up: imports, first-use allocations
        mem_10 = rss_mb(child.pid)
        print(f"server RSS after 10 sessions: {mem_10:.1f} MB", flush=True)
        header = f"{'conc':>5} {'sessions':>8} {'sess/s':>8} {'TTFA p50':>9} {'TTFA p95':>9}"
        print(header + f" {'overhead p50':>13} {'overhead p95':>13}  (ms)")
        total = 10
        for level in args.levels:
            r = await load(base, level, max(args.sessions, level * 4))
            total += int(r["sessions"])
            print(
                f"{level:>5} {int(r['sessions']):>8} {r['sessions_per_s']:>8.1f} "
                f"{r['client_ttfa_p50_ms']:>9.1f} {r['client_ttfa_p95_ms']:>9.1f} "
                f"{r['overhead_p50_ms']:>13.1f} {r['overhead_p95_ms']:>13.1f}",
                flush=True,
            )
        if total < 1000:
            await load(base, 10, 1000 - total)
            total = 1000
        gc.collect()
        mem_1000 = rss_mb(child.pid)
        print(
            f"server RSS after {total} sessions: {mem_1000:.1f} MB "
            f"({mem_1000 - mem_10:+.1f} MB vs after 10)"
        )
    finally:
        child.terminate()
        with anyio.move_on_after(10):
            await child.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,10,50", help="concurrency levels (default 1,10,50)")
    parser.add_argument("--sessions", type=int, default=200, help="sessions per level (min 4x)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        serve_forever(args.child)
    else:
        args.levels = [int(x) for x in args.levels.split(",")]
        anyio.run(main, args)
