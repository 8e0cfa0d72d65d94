"""The unit of audio that flows from a TTS engine to the sinks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]


@dataclass(frozen=True)
class AudioChunk:
    """Mono int16 samples at ``sample_rate``, from text chunk number ``text_index``."""

    samples: Samples
    sample_rate: int
    text_index: int = 0

    def __post_init__(self) -> None:
        if self.samples.dtype != np.int16 or self.samples.ndim != 1:
            raise ValueError("AudioChunk samples must be a 1-D int16 array (mono)")
        if self.sample_rate <= 0:
            raise ValueError("sample_rate must be positive")

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate

    @classmethod
    def from_pcm16(cls, data: bytes, sample_rate: int, text_index: int = 0) -> AudioChunk:
        """Build a chunk from little-endian signed 16-bit mono PCM bytes (an even count)."""
        if len(data) % 2:
            raise ValueError("PCM16 data must have an even number of bytes")
        samples = np.frombuffer(data, dtype="<i2").astype(np.int16, copy=True)
        return cls(samples, sample_rate, text_index)
