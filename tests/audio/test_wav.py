from __future__ import annotations

import shutil
import wave
from pathlib import Path

import numpy as np

from voicepipe.audio.wav import WavWriter


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")


def test_the_file_is_valid_after_every_write(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    writer = WavWriter(path, 22050)
    rng = np.random.default_rng(1)
    written: list[np.ndarray] = []
    for n in (0, 1, 1000, 7, 22050):
        block = rng.integers(-32768, 32767, n, dtype=np.int16)
        writer.write(block)
        written.append(block)
        # A copy taken now is what a killed process would leave behind.
        snapshot = tmp_path / "snapshot.wav"
        shutil.copy(path, snapshot)
        rate, samples = read_wav(snapshot)
        assert rate == 22050
        np.testing.assert_array_equal(samples, np.concatenate(written))
    writer.close()
    assert writer.seconds == (1 + 1000 + 7 + 22050) / 22050


def test_empty_file_is_a_valid_wav(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    WavWriter(path, 16000).close()
    rate, samples = read_wav(path)
    assert rate == 16000 and len(samples) == 0
