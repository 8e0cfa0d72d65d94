"""Sample-rate conversion and down-mixing, band-limited with soxr (naive decimation aliases).

Engines speak at 22.05, 24 or 44.1 kHz and devices want 48 kHz; convert once, at the sink
boundary. ``Resampler`` keeps the filter state between chunks, so the joins stay seamless.

soxr runs on float32 here, and this module rounds to int16 itself: soxr's own int16 output
depends on where the chunks were cut (by a sample value or two), so the same audio cut
differently came out different. In float the streamed output equals the one-shot
``resample`` sample for sample, whatever the chunk sizes, and ``Resampler.flush`` makes the
total length exactly the input's duration at the new rate (rounded), so a stream neither
gains nor loses a sample.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from voicepipe.audio.chunk import Samples

__all__ = ["Resampler", "convert_rate", "expected_length", "mix_to_mono", "resample"]

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


def _to_float(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    return samples.astype(np.float32) * np.float32(1 / 32768)


def _to_int16(samples: npt.NDArray[np.float32]) -> Samples:
    scaled = np.rint(samples * np.float32(32768))
    out: Samples = np.clip(scaled, -32768, 32767).astype(np.int16)
    return out


def expected_length(frames: int, from_rate: int, to_rate: int) -> int:
    """How many samples ``frames`` input samples last at ``to_rate`` (rounded half up)."""
    return (frames * to_rate * 2 + from_rate) // (2 * from_rate)


def resample(samples: npt.NDArray[np.int16], from_rate: int, to_rate: int) -> Samples:
    """Convert a whole int16 signal to ``to_rate``; ``(frames, channels)`` is mixed to mono.

    The same samples as a ``Resampler`` fed the signal in any chunks, then flushed.
    """
    _check_rates(from_rate, to_rate)
    mono = mix_to_mono(samples)
    if from_rate == to_rate or len(mono) == 0:
        return np.array(mono, dtype=np.int16)
    resampler = Resampler(from_rate, to_rate)
    return np.concatenate([resampler.process(mono), resampler.flush()])


class Resampler:
    """Streaming rate conversion: ``process`` each chunk in order, then ``flush`` once.

    The output of all calls joined equals ``resample`` of the joined input exactly, and has
    ``expected_length`` samples: no click and no lost sample at a chunk join.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        _check_rates(from_rate, to_rate)
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream: soxr.ResampleStream | None = (
            None
            if from_rate == to_rate
            else soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32", quality=_QUALITY)
        )
        self._frames_in = 0
        self._frames_out = 0

    def process(self, samples: npt.NDArray[np.int16]) -> Samples:
        """Convert the next chunk; the filter delay means output may lag input slightly."""
        mono = mix_to_mono(samples)
        if self._stream is None:
            return np.array(mono, dtype=np.int16)
        self._frames_in += len(mono)
        out = _to_int16(self._stream.resample_chunk(_to_float(mono), last=False))
        self._frames_out += len(out)
        return out

    def flush(self) -> Samples:
        """Return the samples still held in the filter; call once, after the last chunk."""
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        tail = _to_int16(self._stream.resample_chunk(np.zeros(0, np.float32), last=True))
        # soxr may end a sample short or long of the exact duration; make it exact.
        missing = expected_length(self._frames_in, self.from_rate, self.to_rate) - self._frames_out
        if missing <= len(tail):
            tail = tail[: max(missing, 0)]
        else:
            tail = np.concatenate([tail, np.zeros(missing - len(tail), np.int16)])
        self._frames_out += len(tail)
        return tail


def convert_rate(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    """``samples`` at ``to_rate``: unchanged when the rates agree, else resampled once."""
    if from_rate == to_rate:
        return samples
    return resample(samples, from_rate, to_rate)
