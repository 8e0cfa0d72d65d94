"""The fault matrix's harness: loopback servers, the real CLI in a subprocess, and checks.

Every CLI run goes through :func:`Cli.synth`, which also asserts what holds for every cell:
no traceback, at most one line on stderr for a failure, the fake API key nowhere in the
output or the files written, a WAV that is either absent or valid, and a prompt exit.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests import ROOT_DIR
from tests.servers import serve
from tests.servers.llm import FakeLLM
from tests.servers.tts import TTSServer

ROOT = ROOT_DIR
# Set in every child's environment; no output of the fault matrix may contain it.
FAKE_KEYS = {
    "OPENAI_API_KEY": "sk-fault-OPENAI-7f3a9c1e55d04b8e",
    "ANTHROPIC_API_KEY": "sk-ant-fault-ANTHROPIC-2b6d8e0f",
    "ELEVENLABS_API_KEY": "el-fault-ELEVEN-9d1c4a7b",
}
PROMPT = "Hello there. The sky is blue, mostly because of Rayleigh scattering. That is all."
# A CLI run that fails must end well within this (the slowest cell retries 3 times).
EXIT_WITHIN = 15.0


class _QuietDrops(logging.Filter):
    """The TTS server aborts responses on purpose by raising; uvicorn logs each one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Exception in ASGI application" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


@dataclass
class Outcome:
    """What a user of the CLI got: exit code, output, the files left in the output folder."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    output: Path
    files: list[str] = field(default_factory=list)

    @property
    def line(self) -> str:
        """The one line a failed run printed."""
        return self.stderr.strip()

    def wav(self) -> tuple[int, np.ndarray]:
        """The written WAV's rate and samples (it must exist and parse)."""
        with wave.open(str(self.output), "rb") as w:
            assert w.getsampwidth() == 2 and w.getnchannels() == 1
            return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")


def check_wav_file(path: Path) -> None:
    """A WAV on disk must be one a player reads: header sizes that match what is there."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt ", path
    riff, declared = int.from_bytes(data[4:8], "little"), int.from_bytes(data[40:44], "little")
    assert riff == 36 + declared
    assert declared % 2 == 0 and 44 + declared <= len(data), (declared, len(data))


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def file_size_limit(limit: int) -> Callable[[], None]:
    """A preexec_fn that makes the child's disk 'full' after ``limit`` bytes per file."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@dataclass
class Cli:
    """Runs ``voicepipe synth`` against the loopback servers and checks the invariants."""

    llm_url: str
    tts_url: str
    folder: Path

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
        output: Path | None = None,
        stdin: bytes | None = None,
    ) -> Outcome:
        child_env = {**os.environ, **FAKE_KEYS, **(env or {})}
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "voicepipe", *args],
            capture_output=True,
            env=child_env,
            cwd=self.folder,
            timeout=60,
            preexec_fn=preexec_fn,
            input=stdin,
        )
        outcome = Outcome(
            result.returncode,
            result.stdout.decode(errors="replace"),
            result.stderr.decode(errors="replace"),
            time.monotonic() - started,
            output or self.folder / "answer.wav",
            sorted(p.name for p in self.folder.iterdir()),
        )
        self._check(outcome)
        return outcome

    def synth(
        self,
        *extra: str,
        llm: str = "openai",
        tts: str = "openai",
        prompt: str = PROMPT,
        output: str = "answer.wav",
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> Outcome:
        """``synth PROMPT -o FOLDER/OUTPUT`` with LLM and TTS on the loopback servers.

        ``llm``/``tts`` are "openai" (the fake servers) or a full spec ("text", "piper:...").
        """
        target = self.folder / output
        llm_args = ["--llm", llm] if llm != "openai" else ["--llm", "openai:x"]
        if llm == "openai":
            llm_args += ["--llm-url", f"{self.llm_url}/v1"]
        tts_args = ["--tts", tts] if tts != "openai" else ["--tts", "openai:tts-1"]
        if tts == "openai":
            tts_args += ["--tts-url", f"{self.tts_url}/v1"]
        args = ["synth", prompt, "-o", str(target), *llm_args, *tts_args]
        return self.run(*args, *extra, env=env, preexec_fn=preexec_fn, output=target)

    def _check(self, outcome: Outcome) -> None:
        everything = outcome.stdout + outcome.stderr
        for path in self.folder.iterdir():
            if path.is_file():
                everything += path.read_bytes().decode("latin-1")
        for key in FAKE_KEYS.values():
            assert key not in everything, "an API key leaked into the output"
        assert "Traceback" not in outcome.stderr, outcome.stderr
        if outcome.returncode != 0 and not outcome.stderr.startswith("usage: "):  # argparse's
            assert len(outcome.stderr.strip().splitlines()) == 1, outcome.stderr
            assert outcome.stderr.startswith("voicepipe: "), outcome.stderr
            assert outcome.seconds < EXIT_WITHIN, outcome
        # No temporary files, and any WAV left is a valid one.
        assert not [f for f in outcome.files if ".partial" in f], outcome.files
        for name in outcome.files:
            if name.endswith(".wav") and (self.folder / name).is_file():
                check_wav_file(self.folder / name)


@pytest.fixture(scope="session")
def llm_server() -> Iterator[tuple[FakeLLM, str]]:
    app = FakeLLM()
    with serve(app) as url:
        yield app, url


@pytest.fixture(scope="session")
def tts_server() -> Iterator[tuple[TTSServer, str]]:
    app = TTSServer()
    with serve(app) as url:
        try:
            yield app, url
        finally:
            app.release.set()


@pytest.fixture
def fake_llm(llm_server: tuple[FakeLLM, str]) -> FakeLLM:
    """The fake LLM server, reset to default behaviour."""
    llm_server[0].reset()
    return llm_server[0]


@pytest.fixture
def fake_tts(tts_server: tuple[TTSServer, str]) -> Iterator[TTSServer]:
    """The fake TTS server, reset to default behaviour."""
    from tests.servers.tts import Behaviour

    app = tts_server[0]
    app.behaviour = Behaviour()
    app.requests.clear()
    app.release.clear()
    yield app
    app.release.set()


@pytest.fixture
def cli(
    llm_server: tuple[FakeLLM, str],
    tts_server: tuple[TTSServer, str],
    fake_llm: FakeLLM,
    fake_tts: TTSServer,
    tmp_path: Path,
) -> Cli:
    folder = tmp_path / "out"
    folder.mkdir()
    return Cli(llm_server[1], tts_server[1], folder)
