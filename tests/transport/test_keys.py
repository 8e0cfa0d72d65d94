"""Keys named on the command line: the variable's name travels, the key never shows."""

from __future__ import annotations

import pytest

from voicepipe.errors import ConfigError, MissingKey
from voicepipe.transport.keys import OPENAI_BASE_URL, named_key, openai_endpoint

PASTED = "gsk_live_0123456789abcdefPASTED"


def test_a_named_variable_gives_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "  the-key  ")
    assert named_key("GROQ_API_KEY", "openai", "--llm-key-env") == "the-key"


def test_an_unset_variable_is_missing_key_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    with pytest.raises(MissingKey) as info:
        named_key("GROQ_API_KEY", "openai", "--llm-key-env")
    assert info.value.env_var == "GROQ_API_KEY" and "GROQ_API_KEY is unset" in str(info.value)


@pytest.mark.parametrize("given", [PASTED, "sk-proj-abc123-DEF", "Bearer x", ""])
def test_what_may_be_a_pasted_key_is_never_repeated(given: str) -> None:
    with pytest.raises(ConfigError) as info:
        named_key(given, "openai", "--tts-key-env")
    message = str(info.value)
    assert "--tts-key-env takes the name of an environment variable" in message
    assert not given or given not in message


def test_openai_endpoint_follows_the_official_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert openai_endpoint(None, None) == (OPENAI_BASE_URL, None)  # the key: by provider_key
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gw.example/v1")
    assert openai_endpoint(None, None) == ("http://gw.example/v1", "k")
    assert openai_endpoint(None, "mine") == ("http://gw.example/v1", "mine")
    assert openai_endpoint("http://other/v1", None) == ("http://other/v1", None)
