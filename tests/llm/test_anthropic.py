"""AnthropicChat against a loopback server speaking the Messages API's named SSE byte for byte."""

from __future__ import annotations

import pytest

from tests.llm.streams import (
    FAST_RETRY,
    assert_secret_hidden,
    collect,
    collect_until_error,
    server_saw_disconnect,
)
from tests.servers.llm import DEFAULT_TEXT, FakeLLM
from voicepipe.errors import ConfigError, ProviderError, StreamInterrupted
from voicepipe.llm.anthropic import AnthropicChat
from voicepipe.llm.base import Message
from voicepipe.transport.settings import Timeouts

pytestmark = pytest.mark.anyio

KEY = "sk-ant-test-93kd02la"


def chat(base_url: str, **kwargs: object) -> AnthropicChat:
    options = {"api_key": KEY, "retry": FAST_RETRY, **kwargs}
    return AnthropicChat("claude-test", base_url=base_url, **options)  # type: ignore[arg-type]


async def test_streams_text_and_sends_system_at_top_level(fake: FakeLLM, base_url: str) -> None:
    messages: list[Message] = [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Speak plainly."},
        {"role": "user", "content": "Why is the sky blue?"},
    ]
    source = chat(base_url, max_tokens=300, temperature=0.5)
    deltas = await collect(source, messages)
    assert "".join(deltas) == DEFAULT_TEXT
    [request] = fake.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.json["system"] == "Be brief.\n\nSpeak plainly."
    assert request.json["messages"] == [{"role": "user", "content": "Why is the sky blue?"}]
    assert request.json["max_tokens"] == 300
    assert request.json["temperature"] == 0.5
    assert request.json["stream"] is True
    assert source.finish_reason == "end_turn"
    assert source.last_usage == {"input_tokens": 25, "output_tokens": len(fake.tokens())}


async def test_pings_unknown_events_keepalives_and_thinking_are_skipped(
    fake: FakeLLM, base_url: str
) -> None:
    fake.behaviour.unknown_events = True
    fake.behaviour.keepalive = True
    fake.behaviour.reasoning = "The user asks about optics."
    deltas = await collect(chat(base_url))
    assert "".join(deltas) == DEFAULT_TEXT


@pytest.mark.parametrize("line_end", ["\n", "\r", "\r\n"])
@pytest.mark.parametrize("chunk_size", [None, 1])
async def test_line_ends_and_one_byte_chunks(
    fake: FakeLLM, base_url: str, line_end: str, chunk_size: int | None
) -> None:
    fake.behaviour.line_end = line_end
    fake.behaviour.chunk_size = chunk_size
    deltas = await collect(chat(base_url))
    assert "".join(deltas) == DEFAULT_TEXT


@pytest.mark.parametrize(("after", "kind"), [(0, ProviderError), (2, StreamInterrupted)])
async def test_error_event_is_interrupted_once_text_came(
    fake: FakeLLM, base_url: str, after: int, kind: type[ProviderError]
) -> None:
    fake.behaviour.error_after = after
    received, exc = await collect_until_error(chat(base_url))
    assert "".join(received) == "".join(fake.tokens()[:after])
    assert type(exc) is kind
    assert "Overloaded" in str(exc)


async def test_malformed_event(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.malformed_after = 1
    received, exc = await collect_until_error(chat(base_url))
    assert len(received) == 1
    assert isinstance(exc, StreamInterrupted)
    assert "malformed 'content_block_delta' event" in str(exc)


async def test_stream_without_message_stop_is_interrupted(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.send_done = False
    received, exc = await collect_until_error(chat(base_url))
    assert "".join(received) == DEFAULT_TEXT
    assert isinstance(exc, StreamInterrupted)
    assert "message_stop" in str(exc)


async def test_dropped_connection(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.drop_after = 3
    received, exc = await collect_until_error(chat(base_url))
    assert len(received) == 3
    assert isinstance(exc, StreamInterrupted)


async def test_authentication_error_body_is_parsed(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.error_status = 401
    fake.behaviour.error_message = f"invalid x-api-key {KEY}"
    _, exc = await collect_until_error(chat(base_url))
    assert isinstance(exc, ProviderError)
    assert exc.status == 401
    assert "invalid x-api-key ***" in str(exc)
    assert len(fake.requests) == 1
    assert_secret_hidden(exc, KEY)


async def test_overloaded_529_is_retried(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.fail_times = 2
    fake.behaviour.fail_status = 529
    deltas = await collect(chat(base_url))
    assert "".join(deltas) == DEFAULT_TEXT
    assert len(fake.requests) == 3


async def test_idle_stall_closes_the_connection(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.hang_after = 1
    received, exc = await collect_until_error(chat(base_url, timeouts=Timeouts(idle=0.2)))
    assert isinstance(exc, StreamInterrupted)
    assert len(received) == 1
    assert await server_saw_disconnect(fake)


def test_official_endpoint_needs_the_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicChat("claude-haiku-4-5")
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    assert KEY not in repr(AnthropicChat("claude-haiku-4-5"))
