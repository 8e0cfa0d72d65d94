"""Conversations per second through HAProxy: one `voicepipe serve` replica against two.

Starts two replicas as an operator would (``voicepipe serve --llm text --tts piper``: the
text source needs no model, Piper is the default voice, loaded once per process and
synthesizing one chunk at a time) and two HAProxy instances running docs/haproxy.cfg, one
balancing replica 1 alone and one balancing both. Then, at each concurrency level, the same
load goes three ways, the order rotating every round so each sees the machine in turn:

    direct    straight to replica 1 (what the balancer costs is ``lb 1`` against this)
    lb 1      through HAProxy, one replica behind it
    lb 2      through HAProxy, two replicas behind it

Reported: conversations per second, the client's time to the first audio event (p50, p95),
and failures (a non-200 or an error event); ratios are against ``lb 1`` in the same round.

Usage: .venv/bin/python scripts/bench_replicas.py [--levels 4,8] [--sessions 48]
       [--rounds 2] [--tts piper|espeak]
Needs haproxy on the PATH or in /usr/sbin (scripts/_setup --dev installs it as root).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicepipe.metrics import percentile  # noqa: E402

PROMPT = "Hello there, this is a load test. It has two sentences, and then it ends."
MAX_SESSIONS = 64  # per replica: the balancer's maxconn, above any level measured


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_replica(tts: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [sys.executable, "-m", "voicepipe", "serve", "--llm", "text", "--tts", tts]
    command += ["--stt", "none", "--port", str(port), "--rate", "0", "--trusted-proxy"]
    command += ["127.0.0.1", "--max-sessions", str(MAX_SESSIONS)]
    command += ["--max-sessions-per-client", str(MAX_SESSIONS)]
    env = {k: v for k, v in os.environ.items() if k != "VOICEPIPE_API_KEY"}
    with log.open("wb") as out:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    return child, port


def start_balancer(
    haproxy: str, ports: list[int], work: Path, name: str
) -> tuple[subprocess.Popen[bytes], int]:
    """HAProxy on docs/haproxy.cfg, its two server lines replaced by ``ports``."""
    port = free_port()
    lines = []
    for line in (ROOT / "docs" / "haproxy.cfg").read_text().splitlines():
        if line.strip().startswith("server replica"):
            continue
        lines.append(line.replace("bind 127.0.0.1:8000", f"bind 127.0.0.1:{port}"))
        lines[-1] = lines[-1].replace("maxconn 16", f"maxconn {MAX_SESSIONS}")
    lines += [f"    server replica{i} 127.0.0.1:{p}" for i, p in enumerate(ports, 1)]
    config = work / f"{name}.cfg"
    config.write_text("\n".join(lines) + "\n")
    with (work / f"{name}.log").open("wb") as out:
        child = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=out, stderr=out)
    return child, port


def wait_healthy(url: str, child: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"{url} exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer /healthz within {seconds:g} s")


async def session(client: httpx.AsyncClient) -> float | None:
    """One conversation: the client's time to its first audio event (ms), None if it failed."""
    sent = time.perf_counter()
    first: float | None = None
    event = ""
    async with client.stream("POST", "/v1/chat/stream", json={"prompt": PROMPT}) as r:
        if r.status_code != 200:
            await r.aread()
            return None
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
                if event == "error":
                    return None
                if event == "audio" and first is None:
                    first = time.perf_counter()
            elif line.startswith("data: ") and event == "done":
                ok = bool(json.loads(line[6:])["ok"])
                return (first - sent) * 1000 if ok and first is not None else None
    return None


async def load(url: str, concurrency: int, sessions: int) -> dict[str, float]:
    ttfa: list[float] = []
    failed = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        counter = iter(range(sessions))

        async def worker() -> None:
            nonlocal failed
            for _ in counter:
                result = await session(client)
                if result is None:
                    failed += 1
                else:
                    ttfa.append(result)

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
        elapsed = time.perf_counter() - started
    return {
        "per_s": len(ttfa) / elapsed,
        "p50": percentile(ttfa, 50) if ttfa else float("nan"),
        "p95": percentile(ttfa, 95) if ttfa else float("nan"),
        "failed": failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="4,8", help="conversations at once (default 4,8)")
    parser.add_argument("--sessions", type=int, default=48, help="per level and way (48)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per level (2)")
    parser.add_argument("--tts", default="piper", help="the replicas' --tts (piper)")
    args = parser.parse_args()
    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if haproxy is None:
        raise SystemExit("needs haproxy: apt-get install haproxy")
    work = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    children: list[subprocess.Popen[bytes]] = []
    try:
        replicas = [start_replica(args.tts, work / f"replica{i}.log") for i in (1, 2)]
        children += [child for child, _ in replicas]
        for i, (child, port) in enumerate(replicas, 1):
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, child, work / f"replica{i}.log", 120)
        one, one_port = start_balancer(haproxy, [replicas[0][1]], work, "lb1")
        two, two_port = start_balancer(haproxy, [p for _, p in replicas], work, "lb2")
        children += [one, two]
        ways = {
            "direct": f"http://127.0.0.1:{replicas[0][1]}",
            "lb 1": f"http://127.0.0.1:{one_port}",
            "lb 2": f"http://127.0.0.1:{two_port}",
        }
        for name, child in (("lb1", one), ("lb2", two)):
            wait_healthy(ways[name.replace("lb", "lb ")], child, work / f"{name}.log", 10)
        for url in ways.values():
            anyio.run(load, url, 4, 8)  # warm up: imports, first synthesis, connections
        print(f"--tts {args.tts}, {args.sessions} conversations per level and way; {PROMPT!r}")
        print(f"{'at once':>7} {'round':>5} {'way':>6} {'conv/s':>7} {'vs lb 1':>7} "
              f"{'TTFA p50':>8} {'p95 ms':>7} {'failed':>6}")  # fmt: skip
        names = list(ways)
        ratios: dict[tuple[int, str], list[float]] = {}
        for level in (int(x) for x in args.levels.split(",")):
            for r in range(args.rounds):
                order = names[r % 3 :] + names[: r % 3]
                results = {n: anyio.run(load, ways[n], level, args.sessions) for n in order}
                base = results["lb 1"]["per_s"]
                for name in order:
                    res = results[name]
                    ratio = res["per_s"] / base
                    ratios.setdefault((level, name), []).append(ratio)
                    print(f"{level:>7} {r + 1:>5} {name:>6} {res['per_s']:>7.2f} {ratio:>7.2f} "
                          f"{res['p50']:>8.0f} {res['p95']:>7.0f} {int(res['failed']):>6}",
                          flush=True)  # fmt: skip
        print("median ratio to lb 1: " + ", ".join(
            f"{level} at once {name} {statistics.median(values):.2f}"
            for (level, name), values in ratios.items() if name != "lb 1"))  # fmt: skip
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
