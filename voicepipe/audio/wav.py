"""A WAV writer that keeps the file valid at every moment while audio streams in."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from voicepipe.audio.chunk import Samples

_HEADER_BYTES = 44
_MAX_DATA = 0xFFFFFFFF - 36


def wav_header(sample_rate: int, data_bytes: int, channels: int = 1) -> bytes:
    """A canonical 44-byte PCM16 header for ``data_bytes`` of sample data."""
    block_align = channels * 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        16,
        b"data",
        data_bytes,
    )


class WavWriter:
    """Streams mono int16 samples into a WAV file, patching the header after every write.

    If the process dies at any point the file is still a valid WAV holding everything written
    up to the last completed ``write`` (at worst a few trailing bytes beyond the header's size).
    """

    def __init__(self, path: str | Path, sample_rate: int) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.frames = 0
        self._file: BinaryIO | None = open(self.path, "wb")
        self._file.write(wav_header(sample_rate, 0))
        self._file.flush()

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def write(self, samples: Samples) -> None:
        """Append samples and make the header describe them."""
        if self._file is None:
            raise ValueError("WAV writer is closed")
        data = np.asarray(samples, dtype="<i2").tobytes()
        if (self.frames * 2 + len(data)) > _MAX_DATA:
            raise ValueError("WAV files cannot hold more than 4 GiB of audio")
        f = self._file
        f.seek(0, 2)
        f.write(data)
        self.frames += len(samples)
        size = self.frames * 2
        f.seek(4)
        f.write(struct.pack("<I", 36 + size))
        f.seek(40)
        f.write(struct.pack("<I", size))
        f.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
