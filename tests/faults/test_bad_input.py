"""Bad input through the real CLI: odd prompts run or fail cleanly; bad options are exit 2."""

from __future__ import annotations

import pytest

from tests.faults.conftest import Cli


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--llm", "gpt"], "unknown LLM provider 'gpt'"),
        (["--llm", ""], "unknown LLM provider ''"),
        (["--tts", "openai:"], "TTS provider 'openai' needs an argument"),
        (["--llm", "openai:x", "--llm-url", "localhost:8080/v1"], "is not an http:// or https://"),
        (["--llm", "openai:x", "--llm-url", "ftp://example.org/v1"], "--llm-url 'ftp://example"),
        (["--tts", "openai:tts-1", "--tts-url", "localhost:8880/v1"], "--tts-url 'localhost:"),
        (["--llm", "openai:x", "--llm-url", "http://"], "is not an http:// or https://"),
        (["--max-tokens", "0"], "--max-tokens must be at least 1"),
        (["--max-tokens", "-1"], "--max-tokens must be at least 1"),
        (["--timeout-idle", "-1"], "--timeout-idle must be a positive number"),
        (["--timeout-first-token", "nan"], "--timeout-first-token must be a positive"),
        (["--timeout-connect", "0"], "--timeout-connect must be a positive"),
        (["-o", "answer.aiff"], "cannot tell the audio format"),
        (["--chunking", "bogus"], "invalid choice: 'bogus'"),
        (["--max-tokens", "many"], "invalid int value: 'many'"),
    ],
)
def test_bad_options_are_exit_2_and_one_line(cli: Cli, args: list[str], says: str) -> None:
    out = str(cli.folder / "answer.wav")
    if "-o" in args:
        args = [a if a != "answer.aiff" else str(cli.folder / a) for a in args]
    else:
        args = ["-o", out, *args]
    outcome = cli.run("synth", "Hello there.", "--llm", "text", "--tts", "espeak", *args)
    assert outcome.returncode == 2
    last = outcome.stderr.strip().splitlines()[-1]  # argparse prints its usage above the line
    assert says in last, outcome.stderr
    assert outcome.files == []


@pytest.mark.parametrize("prompt", ["", " ", "\n\t  \n"], ids=["empty", "space", "whitespace"])
def test_empty_prompts_are_exit_2(cli: Cli, prompt: str) -> None:
    outcome = cli.synth(llm="text", prompt=prompt)
    assert outcome.returncode == 2
    assert "the prompt is empty" in outcome.line
    assert outcome.files == []


def test_undecodable_prompt_bytes_are_exit_2(cli: Cli) -> None:
    outcome = cli.run(
        "synth", "caf\udce9 ok.", "-o", str(cli.folder / "a.wav"), "--llm", "text",
        env={"PYTHONIOENCODING": "utf-8"}, stdin=None,
    )  # fmt: skip
    assert outcome.returncode == 2
    assert "the prompt is not valid UTF-8" in outcome.line


@pytest.mark.parametrize(
    ("prompt", "min_seconds"),
    [
        ("😀🎉🚀", 0.0),  # nothing speakable: an empty but valid file
        ("```python\nprint(1)\n```", 0.05),  # the code is mentioned, not read out
        ("\x1b[31mred\x07 bell\x08 text, with controls.", 0.1),
        ("word " * 20_000, 50.0),  # 100 KB on the command line (argv caps one argument at 128 KB)
    ],
    ids=["only-emoji", "only-code", "control-characters", "100kB"],
)
def test_odd_prompts_are_spoken_or_silent_never_a_crash(
    cli: Cli, prompt: str, min_seconds: float
) -> None:
    llm = "text" if len(prompt) < 1000 else "openai"  # a long prompt goes to the fake LLM
    outcome = cli.synth(llm=llm, prompt=prompt)
    assert outcome.returncode == 0, outcome.stderr
    rate, samples = outcome.wav()
    if llm == "text":
        assert len(samples) / rate >= min_seconds
    for control in "\x1b\x07\x08":
        assert control not in outcome.stderr


def test_split_with_invalid_utf8_across_reads_is_exit_2(cli: Cli) -> None:
    data = b"fine " * 20_000 + b"\xe2\x82" + b" broken"  # a cut 3-byte character, late
    outcome = cli.run("split", stdin=data)
    assert outcome.returncode == 2
    assert "stdin is not valid UTF-8 (byte 100000)" in outcome.line
