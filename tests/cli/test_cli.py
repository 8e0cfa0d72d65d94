"""The `voicepipe` command as a user runs it: real processes, real models where marked slow."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests import ROOT_DIR
from tests.audio.conftest import PacedDevice, alsa_capture_env, alsa_without_output_env
from tests.watch import FolderWatch

ROOT = ROOT_DIR


def voicepipe(
    *args: str,
    stdin: str | bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    result = subprocess.run(
        [sys.executable, "-m", "voicepipe", *args],
        input=data,
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode(),
        result.stderr.decode(errors="replace"),
    )


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")


def assert_speech(samples: np.ndarray, rate: int, min_seconds: float) -> None:
    """Long enough, loud enough, and not a constant tone: what speech looks like."""
    assert len(samples) / rate >= min_seconds
    frames = samples[: len(samples) // 441 * 441].astype(np.float64).reshape(-1, 441)
    rms = np.sqrt((frames**2).mean(axis=1))
    assert rms.max() > 1000  # loud somewhere
    assert (rms < 100).mean() > 0.02  # with pauses between words
    assert (rms > 300).mean() > 0.3  # and mostly voiced


def test_split_prints_one_sentence_per_line() -> None:
    result = voicepipe(
        "split", stdin="Dr. Smith arrived at 5 p.m. today. He sat down! Was it late?"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Dr. Smith arrived at 5 p.m. today.",
        "He sat down!",
        "Was it late?",
    ]


def test_split_json_and_chunk_chars_give_the_same_chunks() -> None:
    text = "First one here. Second, longer one, with commas. Third."
    words = voicepipe("split", "--json", stdin=text)
    chars = voicepipe("split", "--json", "--chunk-chars", "1", stdin=text)
    assert words.returncode == chars.returncode == 0
    assert words.stdout == chars.stdout
    assert [json.loads(line)["text"] for line in words.stdout.splitlines()] == [
        "First one here.",
        "Second, longer one, with commas.",
        "Third.",
    ]


def test_split_speech_mode_shows_what_the_tts_gets() -> None:
    result = voicepipe(
        "split",
        "--mode",
        "speech",
        stdin="**Hello** there, my good friend. See [the docs](https://x.org/a).",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "*" not in out and "](" not in out and "Hello there," in out and "the docs" in out


def test_split_rejects_invalid_utf8() -> None:
    result = voicepipe("split", stdin=b"fine \xff\xfe broken")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("voicepipe: error: stdin is not valid UTF-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["synth", "  ", "-o", "x.wav"], "the prompt is empty"),
        (["synth", "hi", "-o", "x.wav", "--llm", "gpt"], "unknown LLM provider 'gpt'"),
        (["synth", "hi", "-o", "x.wav", "--tts", "nope"], "unknown TTS provider 'nope'"),
        (["synth", "hi", "-o", "x.wav", "--llm", "openai"], "needs an argument"),
        (["synth", "hi", "-o", "x.xyz", "--llm", "text"], "cannot tell the audio format"),
        (["synth", "hi", "-o", "x.wav", "--llm", "local:/nope/model.gguf"], "model file not found"),
        (["bench", "hi", "--compare", "colour=red"], "--compare takes KEY=A,B"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    args = [str(tmp_path / a) if a.startswith("x.") else a for a in args]
    result = voicepipe(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_unwritable_output_fails_before_any_work(tmp_path: Path) -> None:
    result = voicepipe(
        "synth", "Hello there.", "-o", str(tmp_path / "no" / "a.wav"), "--llm", "text"
    )
    assert result.returncode == 1
    target = tmp_path / "no" / "a.wav"
    assert result.stderr.strip() == (
        f"voicepipe: error: cannot write {target}: folder {target.parent} does not exist"
    )


def test_missing_key_is_one_line_with_the_export_to_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    result = voicepipe(
        "synth", "hi", "-o", str(tmp_path / "x.wav"), "--llm", "openai:gpt-4o-mini", env=env
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("voicepipe: error: ") and "export OPENAI_API_KEY=" in line
    assert list(tmp_path.iterdir()) == []


def test_missing_model_file_is_one_line_naming_the_flag_to_pass(tmp_path: Path) -> None:
    model = tmp_path / "nope.gguf"
    result = voicepipe("synth", "hi", "-o", str(tmp_path / "x.wav"), "--llm", f"local:{model}")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"model file not found: {model}" in line and "--llm local:PATH.gguf" in line


@pytest.mark.slow
def test_synth_text_through_piper_writes_speech(tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    result = voicepipe(
        "synth",
        "Hello there. This is voicepipe, speaking through Piper.",
        "-o",
        str(out),
        "--llm",
        "text",
    )
    assert result.returncode == 0, result.stderr
    rate, samples = read_wav(out)
    assert rate == 22050
    assert_speech(samples, rate, 2.0)
    assert f"wrote {out}" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".mp3", ".ogg", ".flac"])
def test_synth_encoded_formats(tmp_path: Path, suffix: str) -> None:
    from pydub import AudioSegment

    out = tmp_path / f"hello{suffix}"
    result = voicepipe(
        "synth", "Hello there, this is a test of encoded output.", "-o", str(out), "--llm", "text"
    )
    assert result.returncode == 0, result.stderr
    segment = AudioSegment.from_file(out)
    assert 1.5 < segment.duration_seconds < 6
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary files left


@pytest.mark.slow
def test_synth_on_the_embedded_default(tmp_path: Path) -> None:
    out = tmp_path / "answer.wav"
    result = voicepipe("synth", "Why is the sky blue?", "-o", str(out), "--max-tokens", "60", "-v")
    assert result.returncode == 0, result.stderr
    rate, samples = read_wav(out)
    assert_speech(samples, rate, 1.5)
    assert "TTFA" in result.stderr


@pytest.mark.slow
def test_bench_json_has_the_documented_shape(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = voicepipe(
        "bench",
        "Name a color.",
        "-n",
        "2",
        "--warmup",
        "1",
        "--max-tokens",
        "30",
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert set(report) == {"config", "runs", "summary"}
    assert report["config"]["llm"] == "local" and report["config"]["tts"] == "piper"
    assert len(report["runs"]) == 2
    fields = {
        "ttft_ms",
        "first_chunk_ms",
        "first_chunk_text",
        "tts_first_audio_ms",
        "ttfa_ms",
        "total_ms",
        "audio_ms",
        "underrun_ms",
    }
    for run in report["runs"]:
        assert fields <= set(run)  # documented fields; bench may add more (rtf, prompt)
        assert (
            0
            < run["ttft_ms"]
            <= run["first_chunk_ms"]
            <= run["tts_first_audio_ms"]
            <= run["ttfa_ms"]
            <= run["total_ms"]
        )
        assert run["audio_ms"] > 300
    for name in fields - {"first_chunk_text"}:
        s = report["summary"][name]
        assert (
            set(s) == {"p50", "p95", "min", "max"} and s["min"] <= s["p50"] <= s["p95"] <= s["max"]
        )
    assert "ttfa_ms" in result.stdout


@pytest.mark.slow
def test_say_plays_what_it_writes(tmp_path: Path) -> None:
    env, capture = alsa_capture_env(tmp_path)
    out = tmp_path / "said.wav"
    text = "Good morning. The weather today is sunny, with a light breeze."
    result = voicepipe("say", text, "--llm", "text", "-o", str(out), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == text  # the answer is shown as it is spoken
    _, written = read_wav(out)
    played = np.fromfile(capture, dtype="<i2")
    # Same audio to the speakers and the file; the unpaced test device adds silence only.
    np.testing.assert_array_equal(played[played != 0], written[written != 0])
    assert_speech(written, 22050, 2.0)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (scripts/test)")
def test_say_without_a_device_writes_a_wav_instead(tmp_path: Path) -> None:
    env = alsa_without_output_env(tmp_path)
    listed = voicepipe("devices", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "outputs:\n  none" in listed.stdout and "default" in listed.stdout  # a microphone
    text = "Hello there. Nothing here can play this, so a file keeps it."
    result = voicepipe("say", text, "--llm", "text", "--tts", "espeak", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == text
    wav = tmp_path / "voicepipe-answer.wav"
    assert "no speaker found" in result.stderr and str(wav) in result.stderr
    assert f"wrote {wav}" in result.stderr
    data = wav.read_bytes()
    assert int.from_bytes(data[40:44], "little") == len(data) - 44  # the header is complete
    rate, samples = read_wav(wav)
    assert len(samples) / rate > 1.5 and np.abs(samples).max() > 1000  # speech, not silence


def test_say_on_a_device_that_does_not_exist_exits_1(tmp_path: Path) -> None:
    env, _ = alsa_capture_env(tmp_path)  # there is a speaker, just not that one
    args = ["say", "Hello.", "--llm", "text", "--tts", "espeak", "--device", "nonexistent"]
    result = voicepipe(*args, env=env, cwd=tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "no output device matches 'nonexistent'" in line
    assert list(tmp_path.iterdir()) == [tmp_path / "home"]  # no answer written anywhere


@pytest.mark.slow
def test_ctrl_c_mid_answer_exits_promptly_with_a_valid_file(tmp_path: Path) -> None:
    out = tmp_path / "cut.wav"
    long_text = " ".join(f"This is sentence number {i} of a long answer." for i in range(200))
    code, took, stderr = _interrupt_when(
        ["synth", long_text, "-o", str(out), "--llm", "text"],
        tmp_path,
        lambda: out.exists() and out.stat().st_size >= 50_000,
    )
    assert code == 130, stderr
    assert took < 3.0
    rate, samples = read_wav(out)
    assert rate == 22050 and len(samples) > 20_000


def _interrupt_when(
    args: list[str], folder: Path, ready: Callable[[], bool], stderr: Any = subprocess.PIPE
) -> tuple[int, float, str]:
    """Run ``voicepipe ARGS``; send SIGINT once ``ready()`` holds, looking again at each change
    in ``folder``. Return the exit code, how long the process took to exit, and its stderr."""
    with FolderWatch(folder) as watch:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voicepipe", *args],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=ROOT,
        )
        try:
            watch.wait_until(ready, process=proc)
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=15)
            took = time.monotonic() - sent
        finally:
            proc.kill()
    return proc.returncode, took, (err or b"").decode(errors="replace")


@pytest.mark.slow
def test_ctrl_c_during_model_load_exits_promptly(tmp_path: Path) -> None:
    log = tmp_path / "stderr.txt"
    with log.open("wb") as err:
        code, took, _ = _interrupt_when(
            ["synth", "Hi.", "-o", str(tmp_path / "a.wav"), "-v"],
            tmp_path,
            lambda: b"loading" in log.read_bytes(),
            stderr=err,
        )
    assert code == 130, log.read_text()
    assert took < 5.0
    assert not (tmp_path / "a.wav").exists()


@pytest.mark.slow
def test_ctrl_c_during_an_embedded_answer_exits_promptly(tmp_path: Path) -> None:
    out = tmp_path / "a.wav"
    code, took, stderr = _interrupt_when(
        ["synth", "Tell me a long story about the sea.", "-o", str(out), "--max-tokens", "400"],
        tmp_path,
        lambda: out.exists() and out.stat().st_size > 44,
    )
    assert code == 130, stderr
    assert took < 5.0
    rate, samples = read_wav(out)
    assert rate == 22050 and len(samples) > 0


def test_devices_lists_outputs_and_inputs(tmp_path: Path) -> None:
    env, _ = alsa_capture_env(tmp_path)
    result = voicepipe("devices", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    outputs, inputs = lines.index("outputs:"), lines.index("inputs:")
    assert outputs < inputs
    assert any(line.startswith("*") and "default" in line for line in lines[outputs:inputs])


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (scripts/test)")
@pytest.mark.parametrize("also_file", [False, True])
def test_say_v_prints_when_the_answer_was_heard(
    paced_device: PacedDevice, tmp_path: Path, also_file: bool
) -> None:
    # The speakers are a device that plays in real time; -o tees the audio to a file as well.
    env = {**paced_device.env, "VOICEPIPE_TRACE_DB": str(tmp_path / "t.sqlite")}
    args = ["say", "Hello there. Can you hear me now?", "--llm", "text", "--tts", "espeak", "-v"]
    if also_file:
        args += ["-o", str(tmp_path / "said.wav")]
    result = voicepipe(*args, "--trace", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ttfa = re.search(r"^TTFA (\d+) ms", result.stderr, re.MULTILINE)
    heard = re.search(r"audible (\d+) ms: left the speaker (\d+) ms after TTFA", result.stderr)
    assert ttfa is not None and heard is not None, result.stderr
    audible, after = int(heard[1]), int(heard[2])
    assert int(ttfa[1]) <= audible < int(ttfa[1]) + 1000
    assert abs(audible - int(ttfa[1]) - after) <= 1  # each rounded to the ms
    shown = voicepipe("traces", "show", "1", env=env)
    assert shown.returncode == 0, shown.stderr
    assert heard[0] in shown.stdout  # recorded, and read back the same


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (scripts/test)")
def test_a_file_only_run_reports_no_audible_time(tmp_path: Path) -> None:
    out = tmp_path / "a.wav"
    result = voicepipe("say", "Hello there.", "--llm", "text", "--tts", "espeak", "-v", "-o",
                       str(out), env=alsa_without_output_env(tmp_path), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "TTFA" in result.stderr and "audible" not in result.stderr
