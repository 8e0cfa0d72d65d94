"""`voicepipe bench --voice`: a recorded question in, voice-to-voice times out (real models)."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests import ROOT_DIR
from tests.voice.speech import piper_says, silence
from voicepipe.voice.base import LISTEN_RATE


def write_wav(path: Path, samples: npt.NDArray[np.int16]) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(LISTEN_RATE)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voicepipe", "bench", "--no-trace", *args],
        capture_output=True,
        text=True,
        cwd=ROOT_DIR,
        timeout=240,
    )


@pytest.mark.slow
def test_bench_voice_hears_the_question_and_times_every_stage(tmp_path: Path) -> None:
    question = write_wav(
        tmp_path / "bees.wav", np.concatenate([piper_says("What do bees make?"), silence(0.4)])
    )
    out = tmp_path / "voice.json"
    result = bench("--voice", str(question), "-n", "1", "--warmup", "0", "--json", str(out))
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(out.read_text())["voice"]
    (run,) = entry["runs"]
    assert run["transcript"].lower().strip(" ?.") == "what do bees make"
    assert run["answer"]
    # Each stage after the one before it, all measured from the end of the user's speech.
    times = [
        run[k] for k in ("end_detected_ms", "transcript_ms", "first_token_ms", "first_audio_ms")
    ]
    assert 0 < times[0] <= times[1] <= times[2] <= times[3] < 10_000
    assert "voice to voice" in result.stdout


def test_bench_voice_refuses_a_recording_without_sound(tmp_path: Path) -> None:
    quiet = write_wav(tmp_path / "quiet.wav", silence(1))
    result = bench("--voice", str(quiet))
    assert result.returncode == 2
    assert "holds no sound" in result.stderr and "Traceback" not in result.stderr


def test_bench_voice_refuses_a_file_that_is_not_audio(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    result = bench("--voice", str(text))
    assert result.returncode == 1
    assert "could not decode" in result.stderr and "Traceback" not in result.stderr
