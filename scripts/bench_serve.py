"""Load-test `voicepipe serve` on loopback: sessions per second, TTFA the server adds, memory.

The server runs in a child process (uvicorn, one worker) with a fast provider configuration:
TextSource (no model) and a tone engine that synthesizes at once, so what is measured is the
server: HTTP, SSE framing, base64, session bookkeeping. For each concurrency level it reports
sessions per second and the p50/p95 of the TTFA overhead the server adds:

    client TTFA   request sent -> first audio event parsed by the client
    pipeline TTFA LLM request  -> first audio handed to the sink (the metrics event)
    overhead      client TTFA - pipeline TTFA (HTTP, parsing, scheduling, the event loop)

Then the server's resident memory after 10 sessions and after 1,000 (a leak shows as growth),
and overload: a second server with ``--max-sessions N`` gets 2N conversations at once; the
extra ones must be clean 429s (with retry-after) and the served ones must finish without an
error event.

The server runs as `voicepipe serve` runs it (``server_config``: the guarded connections),
with one client address, so the per-client cap is raised to the session cap.
``--compare-plain`` also runs uvicorn with its defaults, the two alternating per level (A B,
then B A with ``--rounds 2``), so what the guards cost is a ratio from one run.

Run: .venv/bin/python scripts/bench_serve.py [--levels 1,10,50] [--sessions 200]
         [--max-sessions 8] [--compare-plain --rounds 2]
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
import anyio.abc
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voicepipe.audio.chunk import AudioChunk
from voicepipe.lifecycle import Lifecycle
from voicepipe.metrics import percentile

PROMPT = "Hello there, this is a load test. It has two sentences, and then it ends."


class InstantTone(Lifecycle):
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


def serve_forever(port: int, max_sessions: int, plain: bool = False) -> None:
    """The child process: the app on uvicorn, configured as `voicepipe serve` does (``plain``:
    uvicorn's defaults, the baseline for what the connection guards cost)."""
    import uvicorn

    from voicepipe.apps.server.app import ServerSettings, create_app
    from voicepipe.apps.server.serving import descriptor_limit, fitted_limits, server_config
    from voicepipe.llm.text import TextSource

    settings = ServerSettings(
        max_sessions=max_sessions, max_sessions_per_client=max_sessions, rate_per_minute=0
    )
    app = create_app(TextSource(0), InstantTone(), settings)
    limits = fitted_limits(descriptor_limit())
    config = server_config(app, host="127.0.0.1", port=port, limits=limits)
    if plain:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, http="h11", log_level="error", access_log=False
        )
    config.log_level = "error"
    uvicorn.Server(config).run()


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


async def start_child(max_sessions: int, plain: bool = False) -> tuple[anyio.abc.Process, str]:
    """A server in a child process; returns it and its base URL once it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, __file__, "--child", str(port), "--max-sessions", str(max_sessions)]
    command += ["--plain"] if plain else []
    child = await anyio.open_process(command, stdout=None)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(200):
            try:
                if (await client.get("/healthz")).is_success:
                    break
            except httpx.TransportError:
                await anyio.sleep(0.05)  # the child is still starting
    return child, base


async def stop_child(child: anyio.abc.Process) -> None:
    child.terminate()
    with anyio.move_on_after(10):
        await child.wait()


async def overload(max_sessions: int) -> dict[str, int]:
    """2x ``max_sessions`` conversations at once against a server capped at ``max_sessions``."""
    child, base = await start_child(max_sessions)
    tally = {"served_ok": 0, "served_with_error": 0, "refused_429": 0, "other": 0}
    limits = httpx.Limits(max_connections=2 * max_sessions)
    try:
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

            async def one() -> None:
                async with client.stream("POST", "/v1/chat/stream", json={"prompt": PROMPT}) as r:
                    if r.status_code == 429:
                        body = json.loads(await r.aread())
                        clean = "retry-after" in r.headers and body["error"]["message"]
                        tally["refused_429" if clean else "other"] += 1
                        return
                    if r.status_code != 200:
                        tally["other"] += 1
                        return
                    events = [line async for line in r.aiter_lines() if line.startswith("event:")]
                ok = "event: error" not in events and events[-1:] == ["event: done"]
                tally["served_ok" if ok else "served_with_error"] += 1

            async with anyio.create_task_group() as tg:
                for _ in range(2 * max_sessions):
                    tg.start_soon(one)
    finally:
        await stop_child(child)
    return tally


async def main(args: argparse.Namespace) -> None:
    child, base = await start_child(256)
    servers = [("serve", base)]
    plain = None
    if args.compare_plain:
        plain, plain_base = await start_child(256, plain=True)
        servers.append(("plain", plain_base))
    try:
        for _, url in servers:
            await load(url, 10, 10)  # warm up: imports, first-use allocations
        mem_10 = rss_mb(child.pid)
        print(f"server RSS after 10 sessions: {mem_10:.1f} MB", flush=True)
        header = f"{'server':>6} {'conc':>5} {'sessions':>8} {'sess/s':>8} {'TTFA p50':>9}"
        print(header + f" {'TTFA p95':>9} {'overhead p50':>13} {'overhead p95':>13}  (ms)")
        total = 10
        for level in args.levels:
            for rounds in range(args.rounds):
                for label, url in servers if rounds % 2 == 0 else servers[::-1]:
                    r = await load(url, level, max(args.sessions, level * 4))
                    total += int(r["sessions"]) if label == "serve" else 0
                    print(
                        f"{label:>6} {level:>5} {int(r['sessions']):>8} "
                        f"{r['sessions_per_s']:>8.1f} "
                        f"{r['client_ttfa_p50_ms']:>9.1f} {r['client_ttfa_p95_ms']:>9.1f} "
                        f"{r['overhead_p50_ms']:>13.1f} {r['overhead_p95_ms']:>13.1f}",
                        flush=True,
                    )
        if plain is not None:
            await stop_child(plain)
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
        await stop_child(child)
    tally = await overload(args.max_sessions)
    print(
        f"{2 * args.max_sessions} conversations at once, --max-sessions {args.max_sessions}: "
        f"{tally['served_ok']} served without error, {tally['refused_429']} clean 429s "
        f"(retry-after), {tally['served_with_error']} served with an error, "
        f"{tally['other']} other"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,10,50", help="concurrency levels (default 1,10,50)")
    parser.add_argument("--sessions", type=int, default=200, help="sessions per level (min 4x)")
    parser.add_argument(
        "--max-sessions", type=int, default=8, help="overload: the cap, sent twice as many (8)"
    )
    parser.add_argument(
        "--compare-plain",
        action="store_true",
        help="also run uvicorn with its defaults, alternating with the guarded server per level",
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs per level and server (1)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        serve_forever(args.child, args.max_sessions, args.plain)
    else:
        args.levels = [int(x) for x in args.levels.split(",")]
        anyio.run(main, args)
