"""The tiny, fast, robotic fallback: the system ``espeak-ng`` program, streamed as it speaks.

No network, no model files, tens of milliseconds to first audio; used when nothing better
is installed. Each text chunk runs one ``espeak-ng --stdout`` process, killed on cancellation.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncGenerator
from contextlib import aclosing

import anyio
from anyio.abc import Process

from voicepipe.audio.chunk import AudioChunk
from voicepipe.errors import ConfigError, ProviderError
from voicepipe.lifecycle import Lifecycle
from voicepipe.tts.httpaudio import wav_chunks

__all__ = ["EspeakTTS"]

# espeak-ng's own voices speak at 22050 Hz (mbrola voices at 16000; the WAV header decides).
_DEFAULT_RATE = 22050
_INSTALL_HINT = "install espeak-ng: apt-get install espeak-ng (macOS: brew install espeak-ng)"


class EspeakTTS(Lifecycle):
    """Speech from the ``espeak-ng`` program; ``voice`` as in ``espeak-ng --voices``.

    ``rate_wpm`` is the speaking rate in words per minute (espeak's default is 175).
    """

    name = "espeak"

    def __init__(
        self, voice: str = "en-us", rate_wpm: int | None = None, *, executable: str | None = None
    ) -> None:
        found = shutil.which(executable or "espeak-ng")
        if found is None:
            raise ConfigError(
                f"the espeak engine needs the {executable or 'espeak-ng'} program, which is "
                f"not on PATH: {_INSTALL_HINT}"
            )
        if rate_wpm is not None and not 20 <= rate_wpm <= 1000:
            raise ConfigError(f"espeak rate_wpm must be 20-1000 words per minute (got {rate_wpm})")
        if not voice or voice.startswith("-"):
            raise ConfigError(f"invalid espeak voice {voice!r}: see espeak-ng --voices")
        self.voice = voice
        self.rate_wpm = rate_wpm
        self.executable = found
        self.sample_rate = _DEFAULT_RATE

    def __repr__(self) -> str:
        return f"EspeakTTS(voice={self.voice!r}, rate_wpm={self.rate_wpm!r})"

    def _set_rate(self, rate: int) -> None:
        self.sample_rate = rate

    def _command(self) -> list[str]:
        # --stdin reads the whole text before speaking, so writing it all first cannot deadlock.
        command = [self.executable, "--stdout", "--stdin", "-b", "1", "-v", self.voice]
        if self.rate_wpm is not None:
            command += ["-s", str(self.rate_wpm)]
        return command

    async def synthesize(self, text: str, text_index: int = 0) -> AsyncGenerator[AudioChunk, None]:
        """Yield the speech for ``text`` while espeak-ng writes it; empty text yields nothing."""
        if not text.strip():
            return
        process = await anyio.open_process(
            self._command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert process.stdin is not None and process.stdout is not None
            await process.stdin.send(text.encode("utf-8"))
            await process.stdin.aclose()
            chunks = wav_chunks(
                _read_all(process),
                provider=self.name,
                text_index=text_index,
                on_format=self._set_rate,
            )
            try:
                async with aclosing(chunks):
                    async for chunk in chunks:
                        yield chunk
            except ProviderError as exc:
                raise ProviderError(
                    f"espeak-ng produced no audio: {await _stderr(process)}; check the voice "
                    f"({self.voice!r}, list them with espeak-ng --voices)",
                    provider=self.name,
                ) from exc
            status = await process.wait()
            if status != 0:
                raise ProviderError(
                    f"espeak-ng failed (exit status {status}): {await _stderr(process)}",
                    provider=self.name,
                )
        finally:
            with anyio.CancelScope(shield=True):
                if process.returncode is None:
                    process.kill()
                await process.aclose()


async def _read_all(process: Process) -> AsyncGenerator[bytes, None]:
    assert process.stdout is not None
    async for data in process.stdout:
        yield data


async def _stderr(process: Process) -> str:
    """What espeak-ng wrote to stderr (bounded), for an error message."""
    if process.stderr is None:
        return "no details"
    text = b""
    with anyio.move_on_after(1):
        async for data in process.stderr:
            text += data
            if len(text) > 4096:
                break
    return text.decode("utf-8", errors="replace").strip() or "no details"
