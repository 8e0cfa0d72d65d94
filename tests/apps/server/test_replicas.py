"""`voicepipe serve` as replicas behind a real load balancer: HAProxy running docs/haproxy.cfg.

Two `voicepipe serve` processes (``--llm text --tts espeak``: no model to load) on ports of
their own, HAProxy in front with the documented configuration (only its addresses and
``maxconn`` swapped for the test's), and clients speaking HTTP to the balancer. Which replica
served a conversation is read from each replica's own ``/healthz`` (``served``); what the
balancer thinks of each replica (UP / DOWN) from its stats socket, added by a second config
file so the documented one stays as it is.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests import ROOT_DIR

HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        HAPROXY is None,
        reason="needs HAProxy (apt-get install haproxy; scripts/test installs it as root)",
    ),
    pytest.mark.skipif(
        shutil.which("espeak-ng") is None, reason="needs espeak-ng (the replicas' fast TTS)"
    ),
]

CONFIG = ROOT_DIR / "docs" / "haproxy.cfg"
KEY = "replica-test-key"  # every replica has it: auth on, as the documented setup
AUTH = {"authorization": f"Bearer {KEY}"}
MAX_SESSIONS = 2  # per replica: two long conversations fill one
SHORT = "Hello there. This is a short answer."
# About 3 s of tokens from the text LLM (50 words a second): long enough to see streaming.
MEDIUM = " ".join(["The river runs past the old mill, and then it turns toward the sea."] * 10)
# About 30 s of tokens: a conversation that holds its slot for the whole test.
LONG = " ".join([MEDIUM] * 10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(what: str, check: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {seconds:g} s for {what}")
        time.sleep(0.05)


class Replica:
    """One `voicepipe serve` process, as an operator would start it behind the balancer."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"{name}.log"
        command = [sys.executable, "-m", "voicepipe", "serve", "--llm", "text"]
        command += ["--tts", "espeak", "--stt", "none", "--port", str(self.port)]
        command += ["--trusted-proxy", "127.0.0.1", "--rate", "0"]
        command += ["--max-sessions", str(MAX_SESSIONS)]
        command += ["--max-sessions-per-client", str(MAX_SESSIONS)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT_DIR,
                env={**os.environ, "VOICEPIPE_API_KEY": KEY},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def health(self) -> dict[str, object]:
        """The replica's own /healthz, asked directly (``?live=1``: 200 even when full)."""
        body: dict[str, object] = httpx.get(f"{self.url}/healthz?live=1", timeout=5).json()
        return body

    def served(self) -> int:
        return int(str(self.health()["served"]))

    def up(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False  # still starting

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class Balancer:
    """HAProxy running docs/haproxy.cfg for these replicas, plus a stats socket to watch it."""

    def __init__(self, tmp_path: Path, replicas: list[Replica]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        text = CONFIG.read_text()
        swaps = {
            "bind 127.0.0.1:8000": f"bind 127.0.0.1:{self.port}",
            "server replica1 127.0.0.1:8001": f"server replica1 127.0.0.1:{replicas[0].port}",
            "server replica2 127.0.0.1:8002": f"server replica2 127.0.0.1:{replicas[1].port}",
            "maxconn 16": f"maxconn {MAX_SESSIONS}",  # = the replicas' --max-sessions
        }
        for old, new in swaps.items():
            assert text.count(old) == 1, f"docs/haproxy.cfg no longer has {old!r} once"
            text = text.replace(old, new)
        config = tmp_path / "haproxy.cfg"
        config.write_text(text)
        self.socket = tmp_path / "haproxy.sock"
        stats = tmp_path / "stats.cfg"
        stats.write_text(f"global\n    stats socket {self.socket} mode 600 level admin\n")
        self.log = tmp_path / "haproxy.log"
        assert HAPROXY is not None
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(config), "-f", str(stats)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def command(self, line: str) -> str:
        """One command on HAProxy's stats socket, and its answer."""
        assert self.process.poll() is None, self.log.read_text()
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.socket))
            s.sendall(line.encode() + b"\n")
            data = b""
            while piece := s.recv(65536):
                data += piece
        return data.decode()

    def stats(self) -> dict[str, dict[str, str]]:
        """The backend's rows of ``show stat`` by name: replica1, replica2, BACKEND."""
        try:
            text = self.command("show stat")
        except (FileNotFoundError, ConnectionRefusedError):
            return {}  # still starting
        rows = csv.DictReader(text.removeprefix("# ").splitlines())
        return {row["svname"]: row for row in rows if row["pxname"] == "replicas"}

    def states(self) -> dict[str, str]:
        """Each replica's state as the balancer sees it: UP, DOWN, ..."""
        return {
            name: row["status"] for name, row in self.stats().items() if name.startswith("replica")
        }

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@dataclass
class Conversation:
    """One /v1/chat/stream as a client saw it."""

    status: int
    events: list[str] = field(default_factory=list)
    first_audio_s: float | None = None  # from the request sent
    done_s: float | None = None
    ok: bool = False  # the done event said ok, with no error event before it
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def converse(
    url: str,
    prompt: str,
    stop: threading.Event | None = None,
    started: threading.Event | None = None,
) -> Conversation:
    """Talk to ``url`` once, reading the SSE stream to its end (or until ``stop`` is set)."""
    sent = time.monotonic()
    with httpx.stream(
        "POST", f"{url}/v1/chat/stream", json={"prompt": prompt}, headers=AUTH, timeout=30
    ) as response:
        result = Conversation(response.status_code, headers=dict(response.headers))
        if response.status_code != 200:
            result.body = response.read()
            return result
        event = ""
        for line in response.iter_lines():
            if started is not None and not started.is_set():
                started.set()
            if stop is not None and stop.is_set():
                break  # hanging up ends the conversation on the replica too
            if line.startswith("event: "):
                event = line[7:]
                result.events.append(event)
            elif line.startswith("data: ") and event == "audio" and result.first_audio_s is None:
                result.first_audio_s = time.monotonic() - sent
            elif line.startswith("data: ") and event == "done":
                result.done_s = time.monotonic() - sent
                result.ok = json.loads(line[6:])["ok"] and "error" not in result.events
    return result


def assert_spoken(conversation: Conversation) -> None:
    assert conversation.status == 200, (conversation.status, conversation.body)
    assert conversation.ok and "audio" in conversation.events, conversation.events


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Balancer, Replica, Replica]]:
    """Two replicas behind HAProxy, both in rotation."""
    a, b = Replica(tmp_path, "a"), Replica(tmp_path, "b")
    balancer = None
    try:
        wait_for("both replicas to answer /healthz", lambda: a.up() and b.up(), 60)
        balancer = Balancer(tmp_path, [a, b])
        wait_for(
            "HAProxy to see both replicas UP",
            lambda: balancer.states() == {"replica1": "UP", "replica2": "UP"},
        )
        yield balancer, a, b
    finally:
        if balancer is not None:
            balancer.stop()
        a.stop()
        b.stop()


def test_sessions_spread_over_both_replicas_and_stream_through_unbuffered(
    cluster: tuple[Balancer, Replica, Replica],
) -> None:
    balancer, a, b = cluster
    # (a) Two clients, four conversations each: least-connections spreads them (4 and 4 in
    # every run here; at least 2 each is required, so a slow start cannot fail it).
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: converse(balancer.url, SHORT), range(8)))
    for result in results:
        assert_spoken(result)
    served = a.served(), b.served()
    assert sum(served) == 8 and min(served) >= 2, served
    # (d) Audio events pass through as they are written, not when the answer ends: HAProxy
    # forwards a chunked response as it comes (an nginx in front needs proxy_buffering off).
    result = converse(balancer.url, MEDIUM)
    assert_spoken(result)
    assert result.first_audio_s is not None and result.done_s is not None
    assert result.done_s > 2.0, result.done_s  # ~3 s of tokens: the answer takes its time
    assert result.first_audio_s < result.done_s - 1.5, (result.first_audio_s, result.done_s)


def test_a_full_replica_leaves_the_rotation_and_new_sessions_go_to_the_other(
    cluster: tuple[Balancer, Replica, Replica],
) -> None:
    balancer, a, b = cluster
    stop = threading.Event()
    with ThreadPoolExecutor(MAX_SESSIONS) as pool:
        # (b) Clients that reach replica A without the balancer fill it with long conversations:
        # only its /healthz can tell HAProxy (which counts its own connections, not these).
        holds = []
        try:
            for _ in range(MAX_SESSIONS):
                started = threading.Event()
                holds.append(pool.submit(converse, a.url, LONG, stop, started))
                assert started.wait(15), "a long conversation did not start"
            health = httpx.get(f"{a.url}/healthz", timeout=5)
            assert health.status_code == 503 and health.headers["retry-after"] == "1"
            assert health.json()["status"] == "full"
            wait_for("HAProxy to take full A out", lambda: balancer.states()["replica1"] == "DOWN")
            served_a, served_b = a.served(), b.served()
            results = [converse(balancer.url, SHORT) for _ in range(4)]
            for result in results:
                assert_spoken(result)  # not one 429 from A, nor a 503 from the balancer
            assert (a.served(), b.served()) == (served_a, served_b + 4)
            assert a.health()["sessions"] == MAX_SESSIONS  # A's own streams went on
        finally:
            stop.set()
        for hold in holds:
            assert hold.result().status == 200 and "error" not in hold.result().events
    # A slot free again: A answers 200 and is back in rotation at the next check.
    wait_for("A's slots to free", lambda: a.health()["sessions"] == 0)
    wait_for("HAProxy to put A back", lambda: balancer.states()["replica1"] == "UP")


def test_a_killed_replica_costs_no_new_session(
    cluster: tuple[Balancer, Replica, Replica],
) -> None:
    balancer, a, b = cluster
    # (c) kill -9. Until the next health check notices, HAProxy still sends requests to A:
    # each is refused at connect and retried on B (retry-on conn-failure, redispatch). With
    # A's checks paused, that window stays open for the whole test rather than up to 1 s.
    assert balancer.command("disable health replicas/replica1").strip() == ""
    a.kill()
    served_b = b.served()
    results = [converse(balancer.url, SHORT) for _ in range(6)]
    for result in results:
        assert_spoken(result)
    assert b.served() == served_b + 6
    stats = balancer.stats()
    assert stats["replica1"]["status"] == "no check"  # still in rotation, checks paused
    assert int(stats["BACKEND"]["wredis"]) >= 1, stats["BACKEND"]  # sent to A, then to B
    assert balancer.command("enable health replicas/replica1").strip() == ""
    wait_for("HAProxy to mark dead A down", lambda: balancer.states()["replica1"] == "DOWN")
    # Every replica gone: the balancer answers as a full replica would, 503 with retry-after.
    b.kill()
    wait_for("HAProxy to mark B down", lambda: balancer.states()["replica2"] == "DOWN")
    result = converse(balancer.url, SHORT)
    assert result.status == 503 and result.headers["retry-after"] == "1"
    assert result.headers["content-type"] == "application/json"
    assert "try again" in json.loads(result.body)["error"]["message"]
