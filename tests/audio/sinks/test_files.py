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


def long_synth(out: Path) -> list[str]:
    """`voicepipe synth` of a long answer (300 sentences, espeak) into ``out``: a process
    that is still writing when a test interrupts it."""
    text = " ".join(f"This is sentence number {i} of a long answer." for i in range(300))
    synth = [sys.executable, "-m", "voicepipe", "synth", text, "-o", str(out)]
    return [*synth, "--llm", "text", "--tts", "espeak"]


def test_a_wav_killed_mid_write_is_readable(tmp_path: Path) -> None:
    out = tmp_path / "killed.wav"
    with FolderWatch(tmp_path) as watch:
        proc = subprocess.Popen(
            long_synth(out),
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


@pytest.mark.anyio
async def test_encoding_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    """The temporary files get names nobody can guess, created afresh: a symlink planted where
    the old names were (.out.mp3.partial.wav, .out.mp3.partial) is left alone, as its target."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out.mp3"
    for planted in (f".{out.name}.partial.wav", f".{out.name}.partial"):
        (tmp_path / planted).symlink_to(victim)
    sink = EncodedFileSink(out)
    with anyio.fail_after(30):
        await sink.start()
        for chunk in speechlike(1.0):
            await sink.write(chunk)
        temporary = modes(tmp_path, ".partial")
        assert len(temporary) == 1 and next(iter(temporary.values())) & 0o077 == 0  # owner-only
        await sink.finish()
    assert victim.read_text() == "precious"
    assert float(probe(out)["duration"]) == pytest.approx(1.0, abs=0.1)
    assert listing(tmp_path) == sorted(
        [".out.mp3.partial", ".out.mp3.partial.wav", "out.mp3", "victim.txt"]
    )
    assert out.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # as any new file


@pytest.mark.anyio
async def test_two_sinks_on_one_path_do_not_share_a_temporary_file(tmp_path: Path) -> None:
    a, b = EncodedFileSink(tmp_path / "same.flac"), EncodedFileSink(tmp_path / "same.flac")
    with anyio.fail_after(30):
        await a.start()
        await b.start()
        await a.write(speechlike(0.5)[0])
        await b.write(speechlike(0.5)[1])
        names = set(modes(tmp_path, ""))
        assert len(names) == 2 and all(n.startswith(".same.flac.") for n in names)
        await a.abort()
        await b.finish()
    assert listing(tmp_path) == ["same.flac"]


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def modes(folder: Path, part: str) -> dict[str, int]:
    """The files (not symlinks) in ``folder`` whose names hold ``part``, and their modes."""
    return {
        p.name: p.stat().st_mode & 0o777
        for p in folder.iterdir()
        if part in p.name and not p.is_symlink()
    }


def size(path: Path) -> int:
    return path.stat().st_size


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.anyio
async def test_encoding_runs_while_the_audio_arrives(tmp_path: Path) -> None:
    """ffmpeg has the audio as it comes (nothing gathered for the end): its output grows
    before the sink is finished, and no temporary WAV is written."""
    sink = EncodedFileSink(tmp_path / "a.mp3")
    with anyio.fail_after(30):
        await sink.start()
        chunks = speechlike(120.0)
        for chunk in chunks:
            await sink.write(chunk)
        (staged,) = modes(tmp_path, ".partial")
        with FolderWatch(tmp_path) as grown:  # ffmpeg, not this process, is writing it
            grown.wait_until(lambda: size(tmp_path / staged) > 100_000)  # of ~480 kB at the end
        assert [name for name in modes(tmp_path, "") if name.endswith(".wav")] == []
        assert sink.seconds == pytest.approx(sum(c.duration for c in chunks))
        await sink.finish()
    assert float(probe(tmp_path / "a.mp3")["duration"]) == pytest.approx(120.0, abs=0.1)


@pytest.mark.anyio
@pytest.mark.parametrize("suffix", [".m4a", ".mp3", ".ogg"])
async def test_a_run_that_fails_midway_keeps_a_valid_file_of_what_was_said(
    tmp_path: Path, suffix: str
) -> None:
    from tests.engines import ToneTTS
    from voicepipe.errors import ProviderError
    from voicepipe.llm.text import TextSource
    from voicepipe.pipeline import Pipeline

    path = tmp_path / f"cut{suffix}"
    tts = ToneTTS(RATE, seconds_per_word=0.2, fail_at_index=2)
    answer = "One two three four. Five six seven eight. Nine ten."
    with anyio.fail_after(30), pytest.raises(ProviderError, match="failed on purpose"):
        await Pipeline(TextSource(0), tts, chunking="sentence").speak(answer, file_sink(path))
    said = sum(len(tone_for(text, RATE, 0.2)) for text in tts.requests[:2]) / RATE  # 1.6 s
    assert float(probe(path)["duration"]) == pytest.approx(said, abs=0.08)  # mp3 pads a frame
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.anyio
async def test_a_cancelled_run_keeps_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "cancelled.m4a"
    sink = EncodedFileSink(path)
    chunks = speechlike(600.0)
    with anyio.fail_after(60):
        await sink.start()
        with anyio.CancelScope() as scope:
            for i, chunk in enumerate(chunks):
                if i == 40:
                    scope.cancel()  # as Ctrl-C would, while this chunk is being written
                await sink.write(chunk)
        await sink.abort()
    kept = sum(c.duration for c in chunks[:41])  # the chunk in flight is kept whole
    assert sink.seconds == pytest.approx(kept)
    assert float(probe(path)["duration"]) == pytest.approx(kept, abs=0.06)
    assert probe(path)["codec"] == "aac"


@pytest.mark.anyio
async def test_an_encoder_that_fails_is_one_clear_error_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    sink = EncodedFileSink(tmp_path / "a.ogg", bitrate="900000k")  # no Opus goes that high
    with anyio.fail_after(30), pytest.raises(AudioError) as caught:
        await write(sink, speechlike(2.0))
    message = str(caught.value)
    assert message.startswith(f"encoding {tmp_path / 'a.ogg'} with ffmpeg failed: ")
    assert "\n" not in message and "/dev/fd" not in message
    assert os.listdir(tmp_path) == []


@pytest.mark.anyio
async def test_a_terminals_ctrl_c_does_not_reach_ffmpeg(tmp_path: Path) -> None:
    """ffmpeg runs in a session of its own: the terminal's SIGINT goes to voicepipe only,
    which then ends the file properly (ffmpeg killed by it would leave a broken M4A)."""
    sink = EncodedFileSink(tmp_path / "a.m4a")
    with anyio.fail_after(30):
        await sink.start()
        await sink.write(speechlike(1.0)[0])
        encoder = sink._encoder
        assert encoder is not None
        assert os.getsid(encoder.pid) == encoder.pid != os.getsid(0)
        await sink.finish()


def test_ctrl_c_while_encoding_through_the_cli_keeps_a_valid_file(tmp_path: Path) -> None:
    out = tmp_path / "story.m4a"
    with FolderWatch(tmp_path) as watch:
        proc = subprocess.Popen(
            long_synth(out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            start_new_session=True,  # its own process group: the "terminal" below
        )
        try:

            def encoding() -> bool:
                staged = [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
                return bool(staged) and staged[0].stat().st_size >= 50_000

            watch.wait_until(encoding, process=proc)
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C on a terminal does
            _, stderr = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert probe(out)["codec"] == "aac" and float(probe(out)["duration"]) > 2.0
    assert os.listdir(tmp_path) == [out.name]
