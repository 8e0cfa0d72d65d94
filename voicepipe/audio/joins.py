"""Click-free joins between chunks, an optional pause between text chunks, rate conversion.

Engines often start or stop a chunk mid-waveform; played back to back, the jump is a click.
``ChunkJoiner`` holds back the last few milliseconds of each chunk until it knows what comes
next, and fades out and in only where a join is abrupt, so smooth audio passes unchanged.
``SinkFeed`` puts a joiner and a streaming resampler in front of a sink.
"""

from __future__ import annotations

import numpy as np

from voicepipe.audio.chunk import AudioChunk, Samples
from voicepipe.audio.resample import Resampler

__all__ = ["ABRUPT_LEVEL", "ChunkJoiner", "SinkFeed", "fade"]

ABRUPT_LEVEL = 1024  # |sample| above this (-30 dBFS) at a start or an end is heard as a click
_EMPTY = np.zeros(0, dtype=np.int16)


def fade(samples: Samples, *, out: bool) -> Samples:
    """A half-cosine fade over all of ``samples``: to exactly zero (out) or from zero (in)."""
    n = len(samples)
    if n == 0:
        return samples
    gain = 0.5 * (1 + np.cos(np.linspace(0.0, np.pi, n)))  # 1 -> 0
    if not out:
        gain = gain[::-1]
    faded: Samples = np.round(samples * gain).astype(np.int16)
    return faded


class ChunkJoiner:
    """Joins chunks at one sample rate into a continuous signal (see the module docstring).

    ``feed`` returns what can be emitted now (all but ``fade_ms`` of the input so far);
    ``flush`` returns the rest at the end. A join is abrupt where a text chunk starts or ends
    above ``ABRUPT_LEVEL``, or where two pieces of one text chunk do not continue each other
    (a jump larger than the signal's own steepest step nearby).
    """

    def __init__(self, sample_rate: int, *, fade_ms: float = 4.0, pause_ms: float = 0.0) -> None:
        if fade_ms < 0 or pause_ms < 0:
            raise ValueError("fade_ms and pause_ms must not be negative")
        self.sample_rate = sample_rate
        self.fade_frames = round(fade_ms * sample_rate / 1000)
        self.pause_frames = round(pause_ms * sample_rate / 1000)
        self.fades = 0  # joins that were faded (for tests and curious users)
        self._tail = _EMPTY
        self._index: int | None = None

    def feed(self, samples: Samples, text_index: int = 0) -> Samples:
        """Take the next chunk's samples; return the samples that are final now."""
        if len(samples) == 0:
            return _EMPTY
        head = np.array(samples, dtype=np.int16)
        parts: list[Samples] = []
        n = min(self.fade_frames, len(head))
        if self._index is None:
            if n and abs(int(head[0])) > ABRUPT_LEVEL:
                head[:n] = fade(head[:n], out=False)
                self.fades += 1
        elif text_index != self._index:
            parts.append(self._end_of_text())
            if self.pause_frames:
                parts.append(np.zeros(self.pause_frames, dtype=np.int16))
            if n and abs(int(head[0])) > ABRUPT_LEVEL:
                head[:n] = fade(head[:n], out=False)
                self.fades += 1
        else:
            tail = self._tail
            if n and len(tail) and self._discontinuous(tail, head):
                tail = fade(tail, out=True)
                head[:n] = fade(head[:n], out=False)
                self.fades += 1
            parts.append(tail)
        self._index = text_index
        parts.append(head)
        joined = np.concatenate(parts) if len(parts) > 1 else head
        keep = min(self.fade_frames, len(joined))
        self._tail = joined[len(joined) - keep :]
        ready: Samples = joined[: len(joined) - keep]
        return ready

    def flush(self) -> Samples:
        """The held-back end of the stream, faded out if it stops abruptly."""
        out = self._end_of_text()
        self._tail, self._index = _EMPTY, None
        return out

    def _end_of_text(self) -> Samples:
        tail = self._tail
        if len(tail) and abs(int(tail[-1])) > ABRUPT_LEVEL:
            self.fades += 1
            return fade(tail, out=True)
        return tail

    @staticmethod
    def _discontinuous(tail: Samples, head: Samples) -> bool:
        jump = abs(int(head[0]) - int(tail[-1]))
        steepest = max(
            int(np.abs(np.diff(tail[-8:].astype(np.int32))).max(initial=0)),
            int(np.abs(np.diff(head[:8].astype(np.int32))).max(initial=0)),
        )
        return jump > max(ABRUPT_LEVEL, 2 * steepest)


class SinkFeed:
    """Chunks in, one continuous signal at the sink's rate out: joins smoothed, resampled once.

    The output rate is ``sample_rate`` or, if None, the first chunk's. With ``smooth=False``
    samples pass through exactly (apart from resampling) and ``pause_ms`` still applies.
    """

    def __init__(
        self, sample_rate: int | None = None, *, smooth: bool = True, pause_ms: float = 0.0
    ) -> None:
        self.sample_rate = sample_rate
        self.smooth = smooth
        self.pause_ms = pause_ms
        self.joiner: ChunkJoiner | None = None
        self._resampler: Resampler | None = None

    def feed(self, chunk: AudioChunk) -> Samples:
        """The samples (at the output rate) that are final once ``chunk`` is known."""
        if self.sample_rate is None:
            self.sample_rate = chunk.sample_rate
        parts: list[Samples] = []
        if self.joiner is None or self.joiner.sample_rate != chunk.sample_rate:
            parts.append(self._flush_source())
            fade_ms = 4.0 if self.smooth else 0.0
            self.joiner = ChunkJoiner(chunk.sample_rate, fade_ms=fade_ms, pause_ms=self.pause_ms)
            self._resampler = Resampler(chunk.sample_rate, self.sample_rate)
        assert self._resampler is not None
        parts.append(self._resampler.process(self.joiner.feed(chunk.samples, chunk.text_index)))
        return _join(parts)

    def flush(self) -> Samples:
        """Everything still held back (the last few ms and the resampler's filter delay)."""
        return self._flush_source()

    def _flush_source(self) -> Samples:
        if self.joiner is None or self._resampler is None:
            return _EMPTY
        out = _join([self._resampler.process(self.joiner.flush()), self._resampler.flush()])
        self.joiner = None
        self._resampler = None
        return out


def _join(parts: list[Samples]) -> Samples:
    parts = [p for p in parts if len(p)]
    if not parts:
        return _EMPTY
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
