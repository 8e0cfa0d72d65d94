"""The command as a new user meets it: stdin, --version, keys for other hosts, TTS options,
traces on a fresh install, and provider text that looks like markup.

Real processes against real loopback servers (the fake LLM and TTS), espeak-ng for speech.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.cli.test_cli import read_wav, voicepipe
from tests.servers import serve
from tests.servers.llm import Behaviour, FakeLLM
from tests.servers.tts import TTSServer

KEY = "sk-gateway-test-key-5f1c0e9a"
OFFICIAL = "sk-official-openai-never-sent-elsewhere"
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@pytest.fixture
def llm_url(llm_server: tuple[FakeLLM, str]) -> str:
    return f"{llm_server[1]}/v1"


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The user's environment with an OpenAI key that must stay home, and a private trace store."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VOICEPIPE_"))}
    return {
        **base,
        "OPENAI_API_KEY": OFFICIAL,
        "VOICEPIPE_TRACE_DB": str(tmp_path / "traces.sqlite"),
        **extra,
    }


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_version() -> None:
    result = voicepipe("--version")
    assert result.returncode == 0 and result.stdout.startswith("voicepipe 0.")


@needs_espeak
@pytest.mark.parametrize("args", [[], ["-"]], ids=["piped", "dash"])
def test_the_prompt_can_come_from_stdin(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "x.wav"
    result = voicepipe(
        "synth", *args, "-o", str(out), "--llm", "text", "--tts", "espeak",
        stdin="Hello from standard input.\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rate, samples = read_wav(out)
    assert len(samples) / rate > 1.0 and abs(samples).max() > 1000  # spoken, not "-"


@pytest.mark.parametrize(
    ("stdin", "message"),
    [(b"", "the prompt is empty"), (b"caf\xe9 au lait", "the prompt on stdin is not valid UTF-8")],
)
def test_a_bad_prompt_on_stdin_is_one_line_and_no_file(
    tmp_path: Path, stdin: bytes, message: str
) -> None:
    result = voicepipe("say", "-", "-o", str(tmp_path / "x.wav"), "--llm", "text", stdin=stdin)
    assert result.returncode == 2
    assert message in one_line(result.stderr)
    assert list(tmp_path.iterdir()) == []


def test_traces_on_a_fresh_install_is_a_friendly_line(tmp_path: Path) -> None:
    result = voicepipe("traces", env=env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("no traces recorded yet") and result.stderr == ""
    assert not (tmp_path / "traces.sqlite").exists()  # listing creates nothing


@needs_espeak
def test_traces_show_limits_the_events_and_says_how_many_were_left_out(tmp_path: Path) -> None:
    e = env(tmp_path)
    text = "One sentence here. And another one. A third, to have events."
    made = voicepipe(
        "synth", text, "-o", str(tmp_path / "a.wav"), "--llm", "text", "--tts", "espeak",
        "--trace", env=e,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    with sqlite3.connect(tmp_path / "traces.sqlite") as db:
        (total,) = db.execute("SELECT count(*) FROM events WHERE run_id = 1").fetchone()
    assert total > 10
    shown = voicepipe("traces", "show", "1", "--events", "4", env=e)
    assert shown.returncode == 0, shown.stderr
    assert f"… {total - 4} more of {total} events not shown" in shown.stdout
    everything = voicepipe("traces", "show", "1", "--events", "0", env=e)
    assert "not shown" not in everything.stdout
    assert everything.stdout.count("│ ") > shown.stdout.count("│ ")


@needs_espeak
def test_chat_trace_records_each_turn(tmp_path: Path) -> None:
    from tests.audio.conftest import alsa_without_output_env

    e = {**env(tmp_path), **alsa_without_output_env(tmp_path)}
    e["VOICEPIPE_TRACE_DB"] = str(tmp_path / "traces.sqlite")
    result = voicepipe(
        "chat", "--llm", "text", "--tts", "espeak", "--trace", env=e,
        stdin="Hello there.\nA second turn.\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2 turn(s) recorded as traces 1-2" in result.stderr
    with sqlite3.connect(tmp_path / "traces.sqlite") as db:
        rows = db.execute("SELECT command, speech_chars, prompt FROM runs ORDER BY id").fetchall()
    assert rows == [("chat", 12, None), ("chat", 14, None)]  # no text without --trace-text


@needs_espeak
def test_a_key_for_another_host_is_named_by_its_variable(
    tmp_path: Path, fake: FakeLLM, llm_url: str
) -> None:
    out = tmp_path / "x.wav"
    args = ["synth", "Hi.", "-o", str(out), "--llm", "openai:m", "--llm-url", llm_url]
    args += ["--tts", "espeak"]
    result = voicepipe(*args, "--llm-key-env", "GATEWAY_KEY", env=env(tmp_path, GATEWAY_KEY=KEY))
    assert result.returncode == 0, result.stderr
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in result.stdout + result.stderr

    fake.reset()
    plain = voicepipe(*args, env=env(tmp_path))  # no option: no key leaves for this host
    assert plain.returncode == 0, plain.stderr
    assert "authorization" not in fake.requests[0].headers

    fake.reset()
    out.unlink()
    unset = voicepipe(*args, "--llm-key-env", "GATEWAY_KEY", env=env(tmp_path))
    assert unset.returncode == 2 and not fake.requests and not out.exists()
    line = one_line(unset.stderr)
    assert "environment variable GATEWAY_KEY is unset" in line and "export GATEWAY_KEY=" in line


def test_openai_base_url_pairs_with_openai_api_key(
    tmp_path: Path, fake: FakeLLM, llm_url: str
) -> None:
    fake.behaviour = Behaviour(error_status=418, error_message="stop here")
    result = voicepipe(
        "synth", "Hi.", "-o", str(tmp_path / "x.wav"), "--llm", "openai:m",
        env=env(tmp_path, OPENAI_BASE_URL=llm_url, OPENAI_API_KEY=KEY),
    )  # fmt: skip
    assert result.returncode == 1
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in result.stderr


def test_a_401_says_how_to_pass_a_key_for_that_host(
    tmp_path: Path, fake: FakeLLM, llm_url: str
) -> None:
    fake.behaviour = Behaviour(error_status=401, error_message="Authentication required.")
    result = voicepipe(
        "synth", "Hi.", "-o", str(tmp_path / "x.wav"), "--llm", "openai:m", "--llm-url", llm_url,
        env=env(tmp_path),
    )  # fmt: skip
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "HTTP 401: Authentication required." in line and "--llm-key-env VAR" in line


@needs_espeak
def test_temperature_reaches_the_model(tmp_path: Path, fake: FakeLLM, llm_url: str) -> None:
    result = voicepipe(
        "synth", "Hi.", "-o", str(tmp_path / "x.wav"), "--llm", "openai:m", "--llm-url", llm_url,
        "--tts", "espeak", "--temperature", "0.3", env=env(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert fake.requests[0].json["temperature"] == 0.3


def test_tts_options_reach_the_speech_server(tmp_path: Path) -> None:
    app = TTSServer()
    out = tmp_path / "x.wav"
    with serve(app) as url:
        result = voicepipe(
            "synth", "Hello there.", "-o", str(out), "--llm", "text",
            "--tts", "openai:gpt-4o-mini-tts:coral", "--tts-url", f"{url}/v1",
            "--tts-speed", "1.5", "--tts-format", "wav", "--tts-instructions", "Whisper.",
            "--tts-key-env", "SPEECH_KEY", env=env(tmp_path, SPEECH_KEY=KEY),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (request,) = app.requests
    assert request.json["speed"] == 1.5 and request.json["instructions"] == "Whisper."
    assert request.json["response_format"] == "wav" and request.json["voice"] == "coral"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert read_wav(out)[1].size > 0


def test_a_tts_option_the_engine_lacks_is_one_line(tmp_path: Path) -> None:
    result = voicepipe(
        "synth", "Hi.", "-o", str(tmp_path / "x.wav"), "--llm", "text", "--tts", "espeak",
        "--tts-instructions", "Calm.",
    )  # fmt: skip
    assert result.returncode == 2
    assert "the espeak TTS engine has no instructions option" in one_line(result.stderr)
    assert list(tmp_path.iterdir()) == []


def test_batch_errors_that_look_like_markup_are_shown_as_text(
    tmp_path: Path, fake: FakeLLM, llm_url: str
) -> None:
    fake.behaviour = Behaviour(error_status=400, error_message="bad [/x] request [bold]")
    prompts = tmp_path / "p.txt"
    prompts.write_text("First?\nSecond?\n")
    result = voicepipe(
        "synth", "--prompts", str(prompts), "--out-dir", str(tmp_path / "out"),
        "--llm", "openai:m", "--llm-url", llm_url, env=env(tmp_path),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr
    assert "bad [/x] request [bold]" in result.stdout + result.stderr
