"""A sink wrapper that learns what the listener heard: how much audio, which text, when it stopped.

A conversation records an interrupted answer as what was heard, not what was written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.base import AudioSink
from voicepipe.timeline import Event


def heard_text(
    chunks: Sequence[str], chunk_seconds: Mapping[int, float], heard_seconds: float
) -> tuple[str, bool]:
    """The speech text heard in the first ``heard_seconds`` of audio, and whether all was heard.

    Chunks play in order, each for ``chunk_seconds[i]``; the chunk playing at the cut counts
    pro rata by characters, cut back to a word boundary.
    """
    heard: list[str] = []
    start = 0.0
    last_played = max(chunk_seconds, default=-1)
    for index, text in enumerate(chunks):
        seconds = chunk_seconds.get(index, 0.0)
        if seconds <= 0 and index < last_played:
            heard.append(text)  # made no sound (e.g. only punctuation), yet later audio played
            continue
        if seconds <= 0 or heard_seconds <= start:
            return " ".join(heard), False
        if heard_seconds >= start + seconds - 1e-3:
            heard.append(text)
            start += seconds
            continue
        cut = int(len(text) * (heard_seconds - start) / seconds)
        part = text[:cut].rsplit(" ", 1)[0] if " " in text[:cut] else ""
        if part:
            heard.append(part.rstrip(" ,;:"))
        return " ".join(heard), False
    return " ".join(heard), True


class HeardSink:
    """Wraps a turn's sink to learn how much was heard, when it stopped, and to keep the audio.

    Heard means played by the device (``frames_played`` of a playback sink), else handed to the
    sink less what it still held (a file sink holds nothing; a null sink keeps a clock).
    """

    def __init__(self, inner: AudioSink, on_speech: Callable[[int], None] | None = None) -> None:
        self.inner = inner
        self.on_speech = on_speech  # called as each text chunk's first audio enters the sink
        self.chunks: list[AudioChunk] = []
        self.chunk_seconds: dict[int, float] = {}  # audio per text chunk, in the order played
        self.written_seconds = 0.0
        self.heard_seconds: float | None = None  # known once the turn has ended
        self.aborted_at: float | None = None
        self._frames_at_start = 0

    def _device_seconds(self) -> float | None:
        frames = getattr(self.inner, "frames_played", None)
        rate = getattr(self.inner, "sample_rate", None)
        if not isinstance(frames, int) or not isinstance(rate, int) or rate <= 0:
            return None
        return (frames - self._frames_at_start) / rate

    async def start(self) -> None:
        frames = getattr(self.inner, "frames_played", 0)
        self._frames_at_start = frames if isinstance(frames, int) else 0
        await self.inner.start()

    async def write(self, chunk: AudioChunk) -> None:
        self.chunks.append(chunk)
        self.written_seconds += chunk.duration
        index = chunk.text_index
        if index not in self.chunk_seconds and self.on_speech is not None:
            self.on_speech(index)
        self.chunk_seconds[index] = self.chunk_seconds.get(index, 0.0) + chunk.duration
        await self.inner.write(chunk)

    async def finish(self) -> None:
        await self.inner.finish()
        self.heard_seconds = self.written_seconds

    async def abort(self) -> None:
        pending = self.inner.buffered_seconds()
        await self.inner.abort()
        self.aborted_at = time.perf_counter()
        device = self._device_seconds()
        heard = device if device is not None else self.written_seconds - pending
        self.heard_seconds = min(self.written_seconds, max(0.0, heard))

    def buffered_seconds(self) -> float:
        return self.inner.buffered_seconds()

    def take_underruns(self) -> list[tuple[float, float]]:
        return self.inner.take_underruns()

    def take_audible(self) -> Event | None:
        take = getattr(self.inner, "take_audible", None)
        return take() if take is not None else None
