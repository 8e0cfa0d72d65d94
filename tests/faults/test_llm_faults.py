"""LLM faults through the real CLI: what the user sees, the exit code and what is kept.

Each cell runs ``voicepipe synth`` against the loopback OpenAI-compatible server (Anthropic
and Ollama where their in-band errors differ). The harness (conftest) checks for every cell:
one line on stderr, no traceback, no API key anywhere, no invalid or temporary file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.faults.conftest import Cli, closed_port
from tests.servers.llm import Behaviour, FakeLLM
from tests.servers.tts import SECONDS_PER_CHARACTER

FULL_SECONDS = 0.6  # the default answer (69 characters) is about 0.67 s at 10 ms a character


@dataclass(frozen=True)
class Cell:
    behaviour: Behaviour = field(default_factory=Behaviour)
    args: tuple[str, ...] = ()
    url: str | None = None  # an --llm-url other than the fake server's
    returncode: int = 1
    says: tuple[str, ...] = ()  # substrings of the one stderr line
    kept: str = "none"  # "none": no file at all; "part": a valid WAV, shorter; "all"


CELLS: dict[str, Cell] = {
    "connection-refused": Cell(
        url=f"http://127.0.0.1:{closed_port()}/v1",
        says=("could not reach openai at http://127.0.0.1:", "ConnectError", "3 attempts"),
    ),
    "dns-failure": Cell(
        url="http://voicepipe-fault.invalid/v1",
        says=("could not reach openai at http://voicepipe-fault.invalid/v1/chat/completions",),
    ),
    "http-401": Cell(
        Behaviour(error_status=401, error_message="Incorrect API key provided: sk-xx***yz."),
        says=("openai returned HTTP 401: Incorrect API key provided: sk-xx***yz.", "check the"),
    ),
    "http-429-retry-after-then-success": Cell(
        Behaviour(fail_times=2, retry_after="0.05"), returncode=0, kept="all"
    ),
    "http-429-no-retry-after-then-success": Cell(Behaviour(fail_times=1), returncode=0, kept="all"),
    "http-429-exhausted": Cell(
        Behaviour(fail_times=99, retry_after="0"),
        says=("HTTP 429 after 3 attempts: Rate limit reached (attempt 3)", "rate limited"),
    ),
    "http-429-retry-after-too-long": Cell(
        Behaviour(fail_times=99, retry_after="3600"),
        says=("HTTP 429: Rate limit reached (attempt 1)",),
    ),
    "http-500": Cell(
        Behaviour(error_status=500, error_message="The server had an error processing it."),
        says=("HTTP 500 after 3 attempts: The server had an error processing it.",),
    ),
    "no-response-past-first-token-timeout": Cell(
        Behaviour(headers_delay=10),
        args=("--timeout-first-token", "0.3"),
        says=("openai sent no response within 0.3 s", "3 attempts"),
    ),
    "slow-first-token-past-idle-timeout": Cell(
        Behaviour(first_token_delay=10),
        args=("--timeout-idle", "0.3"),
        says=("openai stalled: no data for 0.3 s",),
    ),
    "stall-between-tokens": Cell(
        Behaviour(hang_after=3),
        args=("--timeout-idle", "0.3"),
        says=("openai stalled: no data for 0.3 s",),
        kept="part",
    ),
    "connection-dropped-mid-stream": Cell(
        Behaviour(drop_after=3), says=("the connection to openai dropped mid-stream",), kept="part"
    ),
    "malformed-sse-mid-stream": Cell(
        Behaviour(malformed_after=3),
        says=("openai sent a malformed stream frame", "OpenAI-compatible"),
        kept="part",
    ),
    "malformed-sse-first-frame": Cell(
        Behaviour(malformed_after=0), says=("openai sent a malformed stream frame",)
    ),
    "error-event-mid-stream": Cell(
        Behaviour(error_after=3),
        says=("openai reported an error mid-stream: model crashed mid-answer",),
        kept="part",
    ),
    "json-instead-of-stream": Cell(
        Behaviour(json_instead=True, error_message="streaming is disabled here"),
        says=("instead of a stream (streaming is disabled here)",),
    ),
}


@pytest.mark.parametrize("name", list(CELLS))
def test_llm_fault(cli: Cli, fake_llm: FakeLLM, name: str) -> None:
    cell = CELLS[name]
    fake_llm.reset(cell.behaviour)
    args = list(cell.args)
    if cell.url is not None:
        args = ["--llm", "openai:x", "--llm-url", cell.url, *args]
    outcome = cli.synth(*args)
    assert outcome.returncode == cell.returncode, outcome.stderr
    for text in cell.says:
        assert text in outcome.line, outcome.line
    if cell.kept == "none":
        assert outcome.files == [], outcome.files  # nothing, not an empty or broken file
        return
    rate, samples = outcome.wav()
    seconds = len(samples) / rate
    if cell.kept == "all":
        assert seconds > FULL_SECONDS
        assert outcome.line.startswith("wrote ")
    else:
        # The words that came before the fault are spoken: at least "Hello there." (12 chars).
        assert 12 * SECONDS_PER_CHARACTER <= seconds < FULL_SECONDS


@pytest.mark.parametrize(
    ("spec", "path", "says"),
    [
        ("anthropic:x", "", "anthropic reported an error mid-stream"),
        ("ollama:x", "", "an error was encountered while running"),
    ],
)
def test_in_band_errors_of_other_protocols_keep_what_came(
    cli: Cli, fake_llm: FakeLLM, spec: str, path: str, says: str
) -> None:
    fake_llm.reset(Behaviour(error_after=3))
    outcome = cli.synth("--llm", spec, "--llm-url", cli.llm_url + path)
    assert outcome.returncode == 1
    assert says in outcome.line, outcome.line
    rate, samples = outcome.wav()
    assert 0 < len(samples) / rate < FULL_SECONDS


def test_a_key_the_server_echoes_back_is_redacted(cli: Cli, fake_llm: FakeLLM) -> None:
    """The real key goes to "api.openai.com" (here: through an HTTP proxy that is the fake
    server), which echoes it in its 401 message; the user sees the message without the key."""
    from tests.faults.conftest import FAKE_KEYS

    key = FAKE_KEYS["OPENAI_API_KEY"]
    fake_llm.reset(Behaviour(error_status=401, error_message=f"Incorrect API key provided: {key}"))
    outcome = cli.synth(
        "--llm",
        "openai:x",
        "--llm-url",
        "http://api.openai.com/v1",
        env={"HTTP_PROXY": cli.llm_url, "http_proxy": cli.llm_url, "NO_PROXY": ""},
    )
    assert fake_llm.requests[0].headers["authorization"] == f"Bearer {key}"  # it was sent
    assert outcome.returncode == 1
    assert "Incorrect API key provided: ***" in outcome.line
    assert "OPENAI_API_KEY" in outcome.line  # the hint names the variable, not its value
