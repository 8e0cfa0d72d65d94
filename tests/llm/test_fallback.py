"""LLM fallback chains against real sources: an unreachable URL, the loopback LLM server, the
``text`` source."""

from __future__ import annotations

import socket
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path

import anyio
import pytest

from tests.cli.test_cli import read_wav, voicepipe
from tests.llm.streams import FAST_RETRY, PROMPT, collect, collect_until_error
from tests.servers.llm import DEFAULT_TEXT, Behaviour, FakeLLM
from voicepipe import timeline as tl
from voicepipe.audio.sinks.null import NullSink
from voicepipe.errors import ConfigError, ProviderError
from voicepipe.lifecycle import Lifecycle
from voicepipe.llm.base import Message
from voicepipe.llm.fallback import FallbackLLM
from voicepipe.llm.ollama import OllamaChat
from voicepipe.llm.openai import OpenAIChat
from voicepipe.llm.text import TextSource
from voicepipe.pipeline import Pipeline
from voicepipe.providers import make_llm
from voicepipe.transport.settings import Timeouts
from voicepipe.tts.espeak import EspeakTTS

pytestmark = pytest.mark.anyio


@pytest.fixture
def unreachable() -> str:
    """The base URL of a loopback port nobody listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def chat(url: str) -> OpenAIChat:
    return OpenAIChat("m", base_url=url, retry=FAST_RETRY, timeouts=Timeouts(connect=2))


async def test_an_unreachable_server_hands_the_answer_to_the_next_source(
    unreachable: str,
) -> None:
    switches: list[str] = []
    llm = FallbackLLM([chat(unreachable), TextSource(0)], on_switch=switches.append)
    pipe = Pipeline(llm, EspeakTTS(), chunking="sentence")
    with anyio.fail_after(30):
        async with pipe:
            run = await pipe.speak("Hello there. How are you?", NullSink(realtime=False))
    assert run.error is None and run.answer == "Hello there. How are you?"
    assert run.chunks == ["Hello there.", "How are you?"] and run.audio_seconds > 1
    (switch,) = run.timeline.all(tl.FALLBACK)
    assert switch.data["stage"] == "llm" and switch.data["index"] is None
    assert (switch.data["failed"], switch.data["next"]) == ("openai", "text")
    request = run.timeline.first(tl.LLM_REQUEST)
    assert request is not None and request.t <= switch.t  # TTFA still counts from the request
    (message,) = switches
    assert message.startswith("LLM openai failed before answering (")
    assert message.endswith("; text answers instead")


async def test_an_unreachable_server_then_the_loopback_server(
    unreachable: str, fake: FakeLLM, base_url: str
) -> None:
    llm = FallbackLLM([chat(unreachable), chat(f"{base_url}/v1")])
    async with llm:
        assert "".join(await collect(llm)) == DEFAULT_TEXT
    assert len(fake.requests) == 1


async def test_a_server_error_before_the_first_token_falls_back(
    fake: FakeLLM, base_url: str
) -> None:
    fake.behaviour = Behaviour(error_status=503, error_message="overloaded")
    switches: list[str] = []
    llm = FallbackLLM([chat(f"{base_url}/v1"), TextSource(0)], on_switch=switches.append)
    async with llm:
        assert "".join(await collect(llm)) == PROMPT[-1]["content"]
    assert len(fake.requests) == 3  # the first request and its two retries
    assert "overloaded" in switches[0]


async def test_a_failure_after_the_first_token_is_the_runs_and_is_not_repeated(
    fake: FakeLLM, base_url: str
) -> None:
    """Words already spoken cannot be taken back: no other model starts the answer over."""
    fake.behaviour = Behaviour(drop_after=3)
    backup = Counted()
    llm = FallbackLLM([chat(f"{base_url}/v1"), backup])
    async with llm:
        received, error = await collect_until_error(llm)
    assert isinstance(error, ProviderError)
    assert "".join(received) == "".join(fake.tokens()[:3])
    assert backup.streams == 0


async def test_each_answer_tries_the_first_source_again(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour = Behaviour(fail_times=3, fail_status=500)  # one request and its retries
    llm = FallbackLLM([chat(f"{base_url}/v1"), TextSource(0)])
    async with llm:
        assert "".join(await collect(llm)) == PROMPT[-1]["content"]
        assert "".join(await collect(llm)) == DEFAULT_TEXT
    assert len(fake.requests) == 4


async def test_when_the_last_source_fails_its_error_is_raised(unreachable: str) -> None:
    llm = FallbackLLM([chat(unreachable), chat(unreachable)])
    async with llm:
        received, error = await collect_until_error(llm)
    assert received == [] and isinstance(error, ProviderError)


class Counted(Lifecycle):
    """A source that counts how often it was asked, and answers "backup"."""

    name = "counted"

    def __init__(self, *, fails_to_start: bool = False) -> None:
        self.streams = 0
        self.fails_to_start = fails_to_start

    async def prepare(self) -> None:
        if self.fails_to_start:
            raise ProviderError("could not load the model", provider="counted")

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        self.streams += 1
        yield "backup"


async def test_a_source_that_cannot_start_is_left_out_and_reported() -> None:
    switches: list[str] = []
    backup = Counted()
    llm = FallbackLLM([Counted(fails_to_start=True), backup], on_switch=switches.append)
    async with llm:
        assert await collect(llm) == ["backup"]
    assert backup.streams == 1
    assert switches == [
        "LLM counted could not start (could not load the model); counted answers instead"
    ]


def test_make_llm_gives_the_url_to_the_first_network_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    llm = make_llm("text,openai:m,ollama:llama3", url="http://127.0.0.1:9/v1", temperature=0.5)
    assert isinstance(llm, FallbackLLM) and llm.name == "text,openai,ollama"
    text, remote, ollama = llm.sources
    assert isinstance(text, TextSource)
    assert isinstance(remote, OpenAIChat) and remote.base_url == "http://127.0.0.1:9/v1"
    assert remote.temperature == 0.5
    assert isinstance(ollama, OllamaChat) and "127.0.0.1:9" not in ollama.base_url


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        ("local,text", {"url": "http://x/v1"}, "--llm-url given for the LLM chain"),
        ("local,text", {"api_key": "k"}, "an API key given for the LLM chain"),
        ("text, ", {}, "empty LLM spec in the fallback chain"),
        ("text,gpt", {}, "unknown LLM provider 'gpt'"),
    ],
)
def test_a_bad_chain_is_a_config_error(spec: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_llm(spec, **options)  # type: ignore[arg-type]


def test_the_cli_says_so_on_stderr_and_speaks_the_next_answer(
    tmp_path: Path, unreachable: str
) -> None:
    out = tmp_path / "a.wav"
    result = voicepipe(
        "synth", "Hello there.", "-o", str(out), "--llm", "openai:m,text",
        "--llm-url", unreachable, "--tts", "espeak",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "failed before answering" in line]
    assert line.startswith("voicepipe: LLM openai failed before answering (")
    assert read_wav(out)[1].size > 0


async def test_warming_a_chain_warms_each_source_that_can() -> None:
    """bench resets the embedded model's prompt cache between runs through ``warm_up``."""
    warmed: list[str] = []

    class Warmable(TextSource):
        async def warm_up(self) -> None:
            warmed.append("yes")

    await FallbackLLM([TextSource(0), Warmable(0)]).warm_up()
    assert warmed == ["yes"]
