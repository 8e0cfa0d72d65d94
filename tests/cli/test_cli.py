"""The `voicepipe` command as a user runs it: real processes, real models where marked slow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests import ROOT_DIR
from tests.audio.conftest import alsa_capture_env

ROOT = ROOT_DIR


def voicepipe(
    *args: str,
    stdin: str | bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    result = subprocess.run(
        [sys.executable, "-m", "voicepipe", *args],
        input=data,
        capture_output=True,
        env=env,
        cwd=ROOT,
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


def test_missing_key_names_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    result = voicepipe(
        "synth", "hi", "-o", str(tmp_path / "a.wav"), "--llm", "openai:gpt-4o-mini", env=env
    )
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr and len(result.stderr.strip().splitlines()) == 1


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


@pytest.mark.slow
def test_say_without_a_device_writes_a_wav_instead(tmp_path: Path) -> None:
    env, _ = alsa_capture_env(tmp_path)
    (Path(env["HOME"]) / ".asoundrc").write_text(
        "pcm.!default { type null }\npcm.null { type null }\n"
    )
    env["SD_ENABLE_ASIO"] = "0"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "voicepipe",
            "say",
            "Hello.",
            "--llm",
            "text",
            "--device",
            "nonexistent",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no output device matches 'nonexistent'" in result.stderr


@pytest.mark.slow
def test_ctrl_c_mid_answer_exits_promptly_with_a_valid_file(tmp_path: Path) -> None:
    out = tmp_path / "cut.wav"
    long_text = " ".join(f"This is sentence number {i} of a long answer." for i in range(200))
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicepipe", "synth", long_text, "-o", str(out), "--llm", "text"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        while (not out.exists() or out.stat().st_size < 50_000) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert out.exists(), "no audio was written"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
        stopped_after = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert stopped_after < 3.0
    rate, samples = read_wav(out)
    assert rate == 22050 and len(samples) > 20_000


def _interrupt_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool]) -> float:
    """Send SIGINT once ``ready()`` holds; return how long the process took to exit."""
    deadline = time.monotonic() + 60
    while not ready():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the moment to interrupt never came"
        time.sleep(0.01)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=15)
    return time.monotonic() - sent


@pytest.mark.slow
def test_ctrl_c_during_model_load_exits_promptly(tmp_path: Path) -> None:
    log = tmp_path / "stderr.txt"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voicepipe",
                "synth",
                "Hi.",
                "-o",
                str(tmp_path / "a.wav"),
                "-v",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=ROOT,
        )
        try:
            took = _interrupt_when(proc, lambda: b"loading" in log.read_bytes())
        finally:
            proc.kill()
    assert proc.returncode == 130, log.read_text()
    assert took < 5.0
    assert not (tmp_path / "a.wav").exists()


@pytest.mark.slow
def test_ctrl_c_during_an_embedded_answer_exits_promptly(tmp_path: Path) -> None:
    out = tmp_path / "a.wav"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voicepipe",
            "synth",
            "Tell me a long story about the sea.",
            "-o",
            str(out),
            "--max-tokens",
            "400",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        took = _interrupt_when(proc, lambda: out.exists() and out.stat().st_size > 44)
    finally:
        proc.kill()
    assert proc.returncode == 130
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
