"""OpenAIChat against a loopback server speaking chat.completion.chunk SSE byte for byte."""

from __future__ import annotations

import time
from contextlib import aclosing

import anyio
import httpx
import pytest

from tests.llm.streams import (
    FAST_RETRY,
    PROMPT,
    TIMEOUT,
    assert_secret_hidden,
    collect,
    collect_until_error,
    server_saw_disconnect,
)
from tests.servers.llm import DEFAULT_TEXT, FakeLLM
from voicepipe.errors import ConfigError, ProviderError, StreamInterrupted
from voicepipe.llm.openai import OpenAIChat
from voicepipe.transport.settings import RetryPolicy, Timeouts

pytestmark = pytest.mark.anyio

KEY = "sk-test-7a1f9c2e4b"


def chat(base_url: str, **kwargs: object) -> OpenAIChat:
    options = {"api_key": KEY, "retry": FAST_RETRY, **kwargs}
    return OpenAIChat("gpt-test", base_url=f"{base_url}/v1", **options)  # type: ignore[arg-type]


async def test_streams_the_answer_and_sends_the_request(fake: FakeLLM, base_url: str) -> None:
    source = chat(base_url, max_tokens=50, temperature=0.2, extra_body={"seed": 7})
    deltas = await collect(source)
    assert "".join(deltas) == DEFAULT_TEXT
    assert len(deltas) == len(fake.tokens())  # the role-only first chunk yields nothing
    assert source.finish_reason == "stop"
    [request] = fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.json["stream"] is True
    assert request.json["messages"] == PROMPT
    assert request.json["max_tokens"] == 50
    assert request.json["temperature"] == 0.2
    assert request.json["seed"] == 7
    assert "stream_options" not in request.json  # not api.openai.com: not asked by default


async def test_requests_reuse_one_connection_until_closed(fake: FakeLLM, base_url: str) -> None:
    async with chat(base_url) as source:
        await collect(source)
        await collect(source)
    first, second = fake.requests
    assert first.client is not None and first.client == second.client  # same TCP connection
    assert source._client is not None and source._client.is_closed


async def test_usage_chunk_with_empty_choices_is_recorded(fake: FakeLLM, base_url: str) -> None:
    source = chat(base_url, include_usage=True)
    deltas = await collect(source)
    assert "".join(deltas) == DEFAULT_TEXT
    assert fake.requests[0].json["stream_options"] == {"include_usage": True}
    assert source.last_usage is not None
    assert source.last_usage["completion_tokens"] == len(fake.tokens())


async def test_usage_on_the_finish_chunk_is_recorded(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.usage_on_finish = True
    source = chat(base_url, include_usage=True)
    await collect(source)
    assert source.last_usage is not None
    assert source.last_usage["prompt_tokens"] == 9


@pytest.mark.parametrize("line_end", ["\n", "\r", "\r\n"])
@pytest.mark.parametrize("chunk_size", [None, 1])
async def test_line_ends_and_one_byte_chunks(
    fake: FakeLLM, base_url: str, line_end: str, chunk_size: int | None
) -> None:
    fake.behaviour.line_end = line_end
    fake.behaviour.chunk_size = chunk_size
    fake.behaviour.text = "Grüße aus Köln 👋. Zwei Sätze!"  # multi-byte characters split too
    deltas = await collect(chat(base_url))
    assert "".join(deltas) == "Grüße aus Köln 👋. Zwei Sätze!"


async def test_keepalive_comments_and_reasoning_are_not_yielded(
    fake: FakeLLM, base_url: str
) -> None:
    fake.behaviour.keepalive = True
    fake.behaviour.reasoning = "Let me think about scattering."
    deltas = await collect(chat(base_url))
    assert "".join(deltas) == DEFAULT_TEXT


async def test_end_of_stream_without_done_ends_normally(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.send_done = False
    deltas = await collect(chat(base_url))
    assert "".join(deltas) == DEFAULT_TEXT


async def test_explicit_null_and_empty_deltas(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.tokens = ["", "Hi", "", " there"]
    deltas = await collect(chat(base_url))
    assert deltas == ["Hi", " there"]


@pytest.mark.parametrize(("after", "kind"), [(0, ProviderError), (3, StreamInterrupted)])
async def test_error_event_keeps_what_came_and_is_interrupted_once_text_came(
    fake: FakeLLM, base_url: str, after: int, kind: type[ProviderError]
) -> None:
    fake.behaviour.error_after = after
    received, exc = await collect_until_error(chat(base_url))
    assert "".join(received) == "".join(fake.tokens()[:after])
    assert type(exc) is kind
    assert "model crashed mid-answer" in str(exc)
    assert exc.provider == "openai"


@pytest.mark.parametrize(("after", "kind"), [(0, ProviderError), (2, StreamInterrupted)])
async def test_malformed_frame_is_a_clear_error(
    fake: FakeLLM, base_url: str, after: int, kind: type[ProviderError]
) -> None:
    fake.behaviour.malformed_after = after
    received, exc = await collect_until_error(chat(base_url))
    assert len(received) == after
    assert type(exc) is kind
    assert "malformed" in str(exc)


async def test_dropped_connection_is_interrupted(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.drop_after = 4
    received, exc = await collect_until_error(chat(base_url))
    assert "".join(received) == "".join(fake.tokens()[:4])
    assert isinstance(exc, StreamInterrupted)
    assert "dropped" in str(exc)
    assert len(fake.requests) == 1  # never retried once text was delivered


async def test_rate_limit_retried_after_retry_after(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.fail_times = 2
    fake.behaviour.retry_after = "0.05"
    # Backoff alone would take at least 5 s: the 0.05 s retry-after must be what is used.
    slow_backoff = RetryPolicy(max_retries=2, initial_delay=5.0, max_delay=5.0)
    started = time.perf_counter()
    deltas = await collect(chat(base_url, retry=slow_backoff))
    elapsed = time.perf_counter() - started
    assert "".join(deltas) == DEFAULT_TEXT
    assert len(fake.requests) == 3
    assert 0.1 <= elapsed < 3.0


async def test_unauthorized_reports_the_providers_message_without_the_key(
    fake: FakeLLM, base_url: str
) -> None:
    fake.behaviour.error_status = 401
    fake.behaviour.error_message = f"Incorrect API key provided: {KEY}."
    received, exc = await collect_until_error(chat(base_url))
    assert received == []
    assert isinstance(exc, ProviderError)
    assert exc.status == 401
    assert "Incorrect API key provided" in str(exc)
    assert "API key" in str(exc).split("—")[-1]  # the hint
    assert len(fake.requests) == 1  # 401 is not retried
    assert_secret_hidden(exc, KEY)


async def test_server_error_retried_then_reported(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.error_status = 500
    fake.behaviour.error_message = "The server had an error while processing your request."
    _, exc = await collect_until_error(chat(base_url))
    assert isinstance(exc, ProviderError)
    assert exc.status == 500
    assert exc.retryable
    assert "3 attempts" in str(exc)
    assert "The server had an error" in str(exc)
    assert len(fake.requests) == 3


async def test_json_answer_instead_of_stream(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.json_instead = True
    fake.behaviour.error_message = "streaming is not supported"
    _, exc = await collect_until_error(chat(base_url))
    assert isinstance(exc, ProviderError)
    assert "streaming is not supported" in str(exc)


async def test_first_token_delay_and_pacing(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.first_token_delay = 0.2
    fake.behaviour.token_interval = 0.01
    source = chat(base_url, timeouts=Timeouts(idle=2.0))
    arrivals: list[float] = []
    started = time.perf_counter()
    with anyio.fail_after(TIMEOUT):
        async with aclosing(source.stream(PROMPT)) as deltas:
            async for _ in deltas:
                arrivals.append(time.perf_counter() - started)
    assert arrivals[0] >= 0.2
    assert len(arrivals) == len(fake.tokens())


async def test_stall_longer_than_idle_timeout_is_interrupted(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.hang_after = 2
    source = chat(base_url, timeouts=Timeouts(idle=0.2))
    received, exc = await collect_until_error(source)
    assert len(received) == 2
    assert isinstance(exc, StreamInterrupted)
    assert "stalled" in str(exc)
    assert await server_saw_disconnect(fake)


async def test_closing_the_stream_early_closes_the_connection(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.token_interval = 0.05
    fake.behaviour.text = "word " * 200  # ten seconds of tokens if not closed
    with anyio.fail_after(TIMEOUT):
        async with aclosing(chat(base_url).stream(PROMPT)) as deltas:
            async for _ in deltas:
                break
        assert await server_saw_disconnect(fake)
    assert fake.completed == 0


async def test_cancelling_mid_stream_closes_the_connection(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.token_interval = 0.05
    fake.behaviour.text = "word " * 200
    first = anyio.Event()
    received: list[str] = []

    async def consume() -> None:
        async with aclosing(chat(base_url).stream(PROMPT)) as deltas:
            async for delta in deltas:
                received.append(delta)
                first.set()

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await first.wait()
            tg.cancel_scope.cancel()
        assert await server_saw_disconnect(fake, within=2.0)
    assert 1 <= len(received) < 200


async def test_shared_client_stays_open(fake: FakeLLM, base_url: str) -> None:
    async with httpx.AsyncClient() as client:
        source = chat(base_url, client=client)
        first = await collect(source)
        second = await collect(source)
        assert not client.is_closed
    assert first == second == fake.tokens()


def test_official_endpoint_needs_the_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIChat("gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    source = OpenAIChat("gpt-4o-mini")
    assert source.include_usage
    assert KEY not in repr(source)


async def test_official_endpoint_payload_and_key_hint(
    fake: FakeLLM, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Route "api.openai.com" to the fake server to see what would be sent there.
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    fake.behaviour.error_status = 401
    transport = httpx.AsyncHTTPTransport()

    async def to_fake(request: httpx.Request) -> httpx.Response:
        request.url = httpx.URL(f"{base_url}/v1/chat/completions")
        return await transport.handle_async_request(request)

    class Redirect(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await to_fake(request)

    async with httpx.AsyncClient(transport=Redirect()) as client:
        source = OpenAIChat("gpt-4o-mini", client=client, max_tokens=20, retry=FAST_RETRY)
        _, exc = await collect_until_error(source)
    await transport.aclose()
    payload = fake.requests[0].json
    assert payload["max_completion_tokens"] == 20
    assert payload["stream_options"] == {"include_usage": True}
    assert "OPENAI_API_KEY" in str(exc)


async def test_other_servers_get_no_key_unless_given(
    fake: FakeLLM, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    source = OpenAIChat("local", base_url=f"{base_url}/v1")
    await collect(source)
    assert "authorization" not in fake.requests[0].headers
