"""Files in every format: decoded back, the right length; bitrate honoured; no ffmpeg is a
clear error; a WAV stays readable when the process is killed mid-write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import wave
from pathlib import Path

import anyio
import numpy as np
import pytest

from tests import ROOT_DIR
from tests.engines import tone_for
from tests.watch import FolderWatch
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.files import EncodedFileSink, WavFileSink, file_sink
from voicepipe.errors import AudioError, ConfigError

ROOT = ROOT_DIR
RATE = 22050


def speechlike(seconds: float) -> list[AudioChunk]:
    """Chunks of tones at several pitches: 0.25 s pieces, a new text chunk every second."""
    pieces = []
    for i in range(int(seconds * 4)):
        samples = tone_for(f"piece {i}", RATE, 0.125)  # two words -> 0.25 s
        pieces.append(AudioChunk(samples, RATE, i // 4))
    return pieces


async def write(sink: WavFileSink | EncodedFileSink, chunks: list[AudioChunk]) -> None:
    """Write ``chunks`` to ``sink`` from start to finish, within 30 s."""
    with anyio.fail_after(30):
        await sink.start()
        for c in chunks:
            await sink.write(c)
        await sink.finish()


def probe(path: Path) -> dict[str, str]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration,bit_rate:stream=codec_name",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    doc = json.loads(out)
    return {**doc["format"], "codec": doc["streams"][0]["codec_name"]}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("suffix", "codec"),
    [
        (".wav", "pcm_s16le"),
        (".mp3", "mp3"),
        (".ogg", "opus"),
        (".opus", "opus"),
        (".flac", "flac"),
        (".m4a", "aac"),
    ],
)
async def test_each_format_decodes_back_to_the_same_duration(
    tmp_path: Path, suffix: str, codec: str
) -> None:
    from pydub import AudioSegment

    path = tmp_path / f"out{suffix}"
    chunks = speechlike(3.0)
    await write(file_sink(path), chunks)
    expected = sum(c.duration for c in chunks)
    decoded = AudioSegment.from_file(str(path))
    assert decoded.duration_seconds == pytest.approx(expected, abs=0.06)
    assert probe(path)["codec"] == codec
    assert os.listdir(tmp_path) == [path.name]  # the staging files are gone


@pytest.mark.anyio
async def test_flac_and_wav_are_lossless(tmp_path: Path) -> None:
    from pydub import AudioSegment

    chunks = speechlike(1.0)
    expected = np.concatenate([c.samples for c in chunks])
    for suffix in (".wav", ".flac"):
        await write(file_sink(tmp_path / f"x{suffix}"), chunks)
        decoded = AudioSegment.from_file(str(tmp_path / f"x{suffix}"))
        np.testing.assert_array_equal(np.array(decoded.get_array_of_samples()), expected)


@pytest.mark.anyio
async def test_bitrate_is_honoured(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)  # noise: the encoder cannot go below the bitrate
    noise = [AudioChunk(rng.integers(-8000, 8000, RATE, dtype=np.int16), RATE, i) for i in range(4)]
    sizes = {}
    for rate in ("32k", "128k"):
        path = tmp_path / f"n{rate}.mp3"
        await write(EncodedFileSink(path, bitrate=rate), noise)
        sizes[rate] = path.stat().st_size
        assert int(probe(path)["bit_rate"]) == pytest.approx(int(rate[:-1]) * 1000, rel=0.15)
    assert sizes["32k"] * 3 < sizes["128k"]


@pytest.mark.parametrize(
    ("path", "bitrate", "message"),
    [
        ("a.flac", "64k", "applies to lossy formats"),
        ("a.wav", "64k", "applies to lossy formats"),
        ("a.mp3", "fast", "bad bitrate 'fast'"),
        ("a.mp3", "-3k", "bad bitrate"),
    ],
)
def test_a_bad_bitrate_is_a_config_error(path: str, bitrate: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        file_sink(path, bitrate=bitrate)


@pytest.mark.anyio
async def test_missing_ffmpeg_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on the PATH
    needs = r"needs ffmpeg, which is not on the PATH: install it"
    with anyio.fail_after(5):
        with pytest.raises(AudioError, match=needs):
            await file_sink(tmp_path / "a.mp3").start()
        await file_sink(tmp_path / "a.wav").start()  # WAV needs no ffmpeg


def test_missing_ffmpeg_through_the_cli(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "espeak-ng").symlink_to("/usr/bin/espeak-ng")
    env = {**os.environ, "PATH": str(bin_dir)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "voicepipe",
            "synth",
            "Hello.",
            "-o",
            str(tmp_path / "a.m4a"),
            "--llm",
            "text",
            "--tts",
            "espeak",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 1
    assert "writing .m4a files needs ffmpeg" in result.stderr
    assert "apt-get install ffmpeg" in result.stderr
    assert not (tmp_path / "a.m4a").exists()


def test_a_wav_killed_mid_write_is_readable(tmp_path: Path) -> None:
    out = tmp_path / "killed.wav"
    text = " ".join(f"This is sentence number {i} of a long answer." for i in range(300))
    command = [sys.executable, "-m", "voicepipe", "synth", text, "-o", str(out), "--llm", "text"]
    with FolderWatch(tmp_path) as watch:
        proc = subprocess.Popen(
            [*command, "--tts", "espeak"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        try:
            watch.wait_until(lambda: out.exists() and out.stat().st_size >= 200_000, process=proc)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    size = out.stat().st_size
    with wave.open(str(out), "rb") as w:
        frames = w.getnframes()
        samples = np.frombuffer(w.readframes(frames), "<i2")
    assert frames > 90_000 and len(samples) == frames
    # Everything but at most the one write in flight is described by the header.
    assert 0 <= size - 44 - 2 * frames < 2 * RATE * 10
    assert np.abs(samples).max() > 1000
