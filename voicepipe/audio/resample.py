"""Sample-rate conversion and down-mixing, band-limited with soxr (naive decimation aliases).

Engines speak at 22.05, 24 or 44.1 kHz and devices want 48 kHz; convert once, at the sink
boundary. ``Resampler`` keeps the filter state between chunks, so the joins stay seamless.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from voicepipe.audio.chunk import Samples

__all__ = ["Resampler", "convert_rate", "mix_to_mono", "resample"]

_QUALITY = "HQ"


def mix_to_mono(samples: npt.NDArray[np.int16]) -> Samples:
    """Average the channels of a ``(frames, channels)`` int16 array; 1-D input is returned as is."""
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise ValueError("samples must be 1-D (mono) or 2-D (frames, channels)")
    if samples.shape[1] == 1:
        return np.ascontiguousarray(samples[:, 0])
    mixed = samples.astype(np.int32).sum(axis=1) / samples.shape[1]
    out: Samples = np.round(mixed).astype(np.int16)
    return out


def _check_rates(from_rate: int, to_rate: int) -> None:
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive (got {from_rate} -> {to_rate})")


def resample(samples: npt.NDArray[np.int16], from_rate: int, to_rate: int) -> Samples:
    """Convert a whole int16 signal to ``to_rate``; ``(frames, channels)`` is mixed to mono."""
    _check_rates(from_rate, to_rate)
    mono = mix_to_mono(samples)
    if from_rate == to_rate or len(mono) == 0:
        return np.array(mono, dtype=np.int16)
    out: Samples = np.asarray(soxr.resample(mono, from_rate, to_rate, quality=_QUALITY), np.int16)
    return out


class Resampler:
    """Streaming rate conversion: ``process`` each chunk in order, then ``flush`` once.

    The output of all calls joined equals (within rounding) ``resample`` of the joined input.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        _check_rates(from_rate, to_rate)
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream: soxr.ResampleStream | None = (
            None
            if from_rate == to_rate
            else soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality=_QUALITY)
        )

    def process(self, samples: npt.NDArray[np.int16]) -> Samples:
        """Convert the next chunk; the filter delay means output may lag input slightly."""
        mono = mix_to_mono(samples)
        if self._stream is None:
            return np.array(mono, dtype=np.int16)
        out: Samples = np.asarray(self._stream.resample_chunk(mono, last=False), np.int16)
        return out

    def flush(self) -> Samples:
        """Return the samples still held in the filter; call once, after the last chunk."""
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        tail = self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        out: Samples = np.asarray(tail, dtype=np.int16)
        return out


def convert_rate(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    """``samples`` at ``to_rate``: unchanged when the rates agree, else resampled once."""
    if from_rate == to_rate:
        return samples
    return resample(samples, from_rate, to_rate)
