"""The browser page, driven in headless Chromium over the DevTools protocol (no WebDriver).

Chromium's ``--remote-debugging-pipe`` speaks CDP as NUL-separated JSON on fds 3 and 4, so
the test needs only the ``chromium`` binary (Debian's package), no Python browser library.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.engines import ToneTTS
from tests.servers import serve
from voicepipe.apps.server.app import create_app
from voicepipe.llm.text import TextSource

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)"
)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--remote-debugging-pipe",
    "--window-size=900,700",
]


def high_fds(fds: tuple[int, int]) -> tuple[int, int]:
    """The pipe's ends moved to fds >= 10, so redirecting onto fds 3 and 4 cannot clobber them."""
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds)
    for fd in fds:
        os.close(fd)
    return moved[0], moved[1]


class Browser:
    """A headless Chromium and one page, driven with CDP commands over a pipe."""

    def __init__(self, user_data: Path, deadline: float, flags: tuple[str, ...] = ()) -> None:
        assert CHROMIUM is not None
        self.deadline = deadline
        to_chrome_r, self._to_chrome = high_fds(os.pipe())
        self._from_chrome, from_chrome_w = high_fds(os.pipe())
        # Chromium reads commands on fd 3 and writes replies on fd 4 (bash: dash cannot
        # redirect from fds above 9).
        script = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}'
        self.process = subprocess.Popen(
            ["/bin/bash", "-c", script, CHROMIUM, *FLAGS, *flags, f"--user-data-dir={user_data}"],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None
        self.events: list[str] = []  # names of the CDP events seen so far

    def _read_message(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                data = os.read(self._from_chrome, 1 << 16)
                if not data:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += data
        message, _, self._buffer = self._buffer.partition(b"\0")
        result: dict[str, Any] = json.loads(message)
        return result

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run one CDP command (on the page once attached) and return its result."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session is not None and not method.startswith("Target."):
            command["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(command).encode() + b"\0")
        while True:
            reply = self._read_message()
            if "method" in reply:
                self.events.append(reply["method"])
            elif reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result

    def open(self, url: str) -> None:
        """Load ``url`` in a new page and wait for its load event."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.send("Page.enable")
        self.events.clear()
        self.send("Page.navigate", url=url)
        while "Page.loadEventFired" not in self.events:
            message = self._read_message()
            if "method" in message:
                self.events.append(message["method"])

    def evaluate(self, expression: str, *, gesture: bool = False) -> Any:
        """Evaluate JavaScript in the page (awaiting a promise) and return its JSON value."""
        reply = self.send(
            "Runtime.evaluate",
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
            userGesture=gesture,
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(f"page script failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def wait_for(self, condition: str, timeout_ms: int = 15000) -> None:
        """Resolve when ``condition`` is true in the page, or raise after ``timeout_ms``."""
        ok = self.evaluate(
            "new Promise((resolve) => { const t0 = performance.now(); const check = () => {"
            f" if ({condition}) resolve(true);"
            f" else if (performance.now() - t0 > {timeout_ms}) resolve(false);"
            " else requestAnimationFrame(check); }; check(); })"
        )
        assert ok, f"timed out waiting for {condition}"

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot")["data"]))

    def close(self) -> None:
        os.close(self._to_chrome)
        os.close(self._from_chrome)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    b = Browser(tmp_path / "chromium-profile", deadline=time.monotonic() + 60)
    try:
        yield b
    finally:
        b.close()


ANSWER = "The sky is blue because air scatters blue light most. Sunsets are red. That is all."


def test_page_speaks_and_shows_the_answer(browser: Browser, tmp_path: Path) -> None:
    app = create_app({"text": TextSource(tokens_per_second=200)}, {"tone": ToneTTS(24000)})
    with serve(app) as url:
        browser.open(url + "/")
        browser.wait_for("document.querySelector('#voice').options.length > 0")
        browser.evaluate(
            f"document.querySelector('#message').value = {json.dumps(ANSWER)};"
            "document.querySelector('#ask').requestSubmit(); true",
            gesture=True,
        )
        browser.wait_for("window.voicepipe.done")
        stats = browser.evaluate("JSON.parse(JSON.stringify(window.voicepipe))")
        shown = browser.evaluate("document.querySelector('.turn.assistant').textContent")
        browser.wait_for("document.querySelectorAll('.turn.assistant span.spoken').length > 0")
        browser.screenshot(tmp_path / "page.png")
    assert stats["errors"] == []
    assert stats["textChunks"] >= 3
    assert " ".join(shown.split()) == " ".join(ANSWER.split())
    # Every audio chunk the server sent was scheduled on the Web Audio clock, none dropped.
    assert stats["audioChunks"] >= stats["textChunks"]
    assert stats["scheduled"] == stats["audioChunks"]
    assert stats["ttfaMs"] is not None and stats["ttfaMs"] > 0
    assert stats["serverTtfaMs"] is not None
    assert (tmp_path / "page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_page_asks_for_the_key_when_auth_is_on(browser: Browser) -> None:
    from voicepipe.apps.server.app import ServerSettings

    app = create_app(TextSource(0), ToneTTS(), ServerSettings(api_key="s3cret"))
    with serve(app) as url:
        browser.open(url + "/")
        browser.wait_for("!document.querySelector('#key-row').hidden")
        assert browser.evaluate("document.querySelector('#voice').options.length") == 0
        browser.evaluate(
            "const key = document.querySelector('#key'); key.value = 's3cret';"
            "key.dispatchEvent(new Event('change')); true"
        )
        browser.wait_for("document.querySelector('#voice').options.length > 0")
        # The key lives as long as the tab: in sessionStorage, never in localStorage.
        assert browser.evaluate("sessionStorage.getItem('voicepipe-key')") == "s3cret"
        assert browser.evaluate("localStorage.length") == 0


@pytest.mark.slow
def test_hold_to_talk_transcribes_the_microphone_and_answers(tmp_path: Path) -> None:
    """Chromium's fake microphone plays a WAV of Piper asking; the page records it while the
    button is held, the server's local Whisper transcribes it, and the answer is spoken."""
    from tests.cli.test_bench_voice import write_wav
    from tests.voice.speech import piper_says, silence
    from voicepipe.voice.whisper import LocalTranscriber

    question = write_wav(
        tmp_path / "question.wav",
        np.concatenate([silence(0.3), piper_says("What do bees make?"), silence(3)]),
    )
    fake_mic = (
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={question}",
    )
    app = create_app(
        {"text": TextSource(tokens_per_second=200)},
        {"tone": ToneTTS(24000)},
        stt=LocalTranscriber(),
    )
    browser = Browser(tmp_path / "profile", deadline=time.monotonic() + 90, flags=fake_mic)
    try:
        with serve(app, lifespan="on") as url:
            browser.open(url + "/")
            browser.wait_for("!document.querySelector('#talk').hidden")
            press = "new PointerEvent('{0}', {{bubbles: true}})"
            browser.evaluate(
                f"document.querySelector('#talk').dispatchEvent({press.format('pointerdown')});"
                "true",
                gesture=True,
            )
            browser.wait_for("document.querySelector('#talk').classList.contains('live')")
            browser.evaluate("new Promise((resolve) => setTimeout(() => resolve(true), 2500))")
            browser.evaluate(
                f"document.querySelector('#talk').dispatchEvent({press.format('pointerup')}); true"
            )
            browser.wait_for("window.voicepipe.done", timeout_ms=30000)
            stats = browser.evaluate("JSON.parse(JSON.stringify(window.voicepipe))")
            shown = browser.evaluate("document.querySelector('.turn.assistant').textContent")
    finally:
        browser.close()
    assert stats["errors"] == []
    assert stats["heard"].lower().strip(" ?.") == "what do bees make"
    # `--llm text` speaks the prompt back: the answer is what was heard, spoken.
    assert " ".join(shown.split()).lower().strip(" ?.") == "what do bees make"
    assert stats["audioChunks"] >= 1 and stats["scheduled"] == stats["audioChunks"]
