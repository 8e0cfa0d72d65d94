"""`voicepipe serve`'s options: an empty key refuses to start; hosts the server answers to."""

from __future__ import annotations

import pytest

from voicepipe.cli import main
from voicepipe.cli.serve import KEY_ENV, allowed_hosts, api_key

SERVE = ["serve", "--llm", "text", "--tts", "espeak", "--stt", "none", "--port", "9"]


@pytest.mark.parametrize("given", ["", "  "])
def test_an_empty_api_key_refuses_to_start(
    given: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: `--api-key "$KEY"` with $KEY unset started with auth off."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert main([*SERVE, "--api-key", given]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--api-key is empty" in err and KEY_ENV in err


def test_an_empty_key_variable_refuses_to_start(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "")
    assert main(SERVE) == 2
    assert f"${KEY_ENV} is set but empty" in capsys.readouterr().err


def test_the_key_comes_from_the_environment_first(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, " from-env ")
    assert api_key(None) == "from-env"
    assert capsys.readouterr().err == ""
    assert api_key("on-the-command-line") == "on-the-command-line"  # allowed, with a note
    err = capsys.readouterr().err
    assert "process list" in err and "on-the-command-line" not in err
    monkeypatch.delenv(KEY_ENV)
    assert api_key(None) is None  # neither: no auth, as before


def test_the_hosts_a_server_answers_to() -> None:
    assert allowed_hosts("127.0.0.1", []) == (("localhost", "127.0.0.1", "::1"), False)
    names, any_ip = allowed_hosts("voice.lan", ["*.example.com"])
    assert names == ("localhost", "127.0.0.1", "::1", "voice.lan", "*.example.com")
    assert not any_ip
    # Bound to every interface, it is reached by whatever address: IP literals are fine (a
    # rebinding needs a name), other names must be allowed one by one.
    assert allowed_hosts("0.0.0.0", ["voice.example"]) == (
        ("localhost", "127.0.0.1", "::1", "voice.example"),
        True,
    )
