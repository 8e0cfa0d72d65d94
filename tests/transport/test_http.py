"""transport: retries, timeouts, error parsing and redaction, over real loopback HTTP."""

from __future__ import annotations

import email.utils
import socket
import time
from contextlib import aclosing

import anyio
import httpx
import pytest

from tests.llm.streams import TIMEOUT, assert_secret_hidden, server_saw_disconnect
from tests.servers.llm import FakeLLM
from voicepipe.errors import ConfigError, ProviderError, StreamInterrupted
from voicepipe.transport.keys import env_key, provider_key, redact, redacted_cause
from voicepipe.transport.retry import retry_after
from voicepipe.transport.settings import RetryPolicy, Timeouts
from voicepipe.transport.stream import iter_body, open_stream
from voicepipe.transport.wording import json_object, provider_message

SECRET = "sk-secret-5f0c1d"
FAST = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02)
BODY = {"model": "m", "messages": [], "stream": True}


def test_redact_replaces_every_secret() -> None:
    assert redact("a sk-1 b sk-12 c sk-1", ["sk-1", "sk-12", ""]) == "a *** b *** c ***"


def test_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_KEY", " k-1 ")
    assert env_key("SOME_KEY", "demo") == "k-1"
    monkeypatch.delenv("SOME_KEY")
    with pytest.raises(ConfigError, match="SOME_KEY") as info:
        env_key("SOME_KEY", "demo")
    assert "demo" in str(info.value)


def test_provider_key_reads_the_variable_only_for_the_official_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOME_KEY", "k-1")
    assert provider_key(None, official=True, var="SOME_KEY", provider="demo") == ("k-1", "SOME_KEY")
    assert provider_key(None, official=False, var="SOME_KEY", provider="demo") == (None, None)
    assert provider_key("mine", official=True, var="SOME_KEY", provider="demo") == ("mine", None)
    assert provider_key("", official=True, var="SOME_KEY", provider="demo") == (None, None)
    monkeypatch.delenv("SOME_KEY")
    with pytest.raises(ConfigError, match="SOME_KEY"):
        provider_key(None, official=True, var="SOME_KEY", provider="demo")


@pytest.mark.parametrize(
    ("data", "parsed"),
    [('{"a": 1}', {"a": 1}), (b'{"b": "\xc3\xbc"}', {"b": "ü"}), ("[1]", None), ("{", None)],
)
def test_json_object(data: str | bytes, parsed: object) -> None:
    assert json_object(data) == parsed


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"error": {"message": "bad key", "type": "invalid_request_error"}}, "bad key"),
        ({"type": "error", "error": {"type": "overloaded_error", "message": "Busy"}}, "Busy"),
        ({"error": "model not found"}, "model not found"),
        ({"detail": "Not Found"}, "Not Found"),
        ({"detail": {"status": "invalid_api_key", "message": "Invalid key"}}, "Invalid key"),
        ({"detail": [{"loc": ["body", "voice"], "msg": "missing"}]}, "body.voice: missing"),
        ({"message": "flat", "code": 400, "type": "BadRequestError"}, "flat"),
        ({"error": {"code": 503, "type": "unavailable_error"}}, "unavailable_error"),
        ({"object": "list"}, None),
        ([1, 2], None),
    ],
)
def test_provider_message_shapes(payload: object, message: str | None) -> None:
    assert provider_message(payload) == message


def test_foreign_exceptions_mentioning_a_secret_are_replaced() -> None:
    leaky = httpx.ConnectError(f"cannot reach https://x.test/?key={SECRET}")
    stand_in = redacted_cause(leaky, [SECRET])
    assert stand_in is not leaky
    assert "ConnectError" in str(stand_in) and "key=***" in str(stand_in)
    assert_secret_hidden(stand_in, SECRET)
    harmless = httpx.ConnectError("connection refused")
    assert redacted_cause(harmless, [SECRET]) is harmless


def test_retry_after_forms() -> None:
    assert retry_after(httpx.Headers({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert retry_after(httpx.Headers({"retry-after": "1.5"})) == 1.5
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = retry_after(httpx.Headers({"retry-after": future}))
    assert seconds is not None and 25 < seconds <= 31
    assert retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after(httpx.Headers({})) is None


async def _open(base_url: str, **kwargs: object) -> list[bytes]:
    """Open the fake's OpenAI route and read the body (bounded by TIMEOUT); the chunks that came."""
    options: dict[str, object] = {"provider": "demo", "json": BODY, "retry": FAST}
    options.update(kwargs)
    with anyio.fail_after(TIMEOUT):
        async with (
            httpx.AsyncClient() as client,
            open_stream(client, "POST", f"{base_url}/v1/chat/completions", **options) as response,  # type: ignore[arg-type]
        ):
            return [c async for c in iter_body(response, provider="demo", idle_timeout=5.0)]


async def _error(base_url: str, **kwargs: object) -> BaseException:
    try:
        await _open(base_url, **kwargs)
    except Exception as exc:
        return exc
    raise AssertionError("no error raised")


@pytest.mark.anyio
async def test_retry_after_ms_is_honoured_before_success(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.fail_times = 2
    fake.behaviour.retry_after_ms = "60"
    slow = RetryPolicy(max_retries=2, initial_delay=5.0, max_delay=5.0)
    started = time.perf_counter()
    chunks = await _open(base_url, retry=slow)
    assert b"[DONE]" in b"".join(chunks)
    assert len(fake.requests) == 3
    assert 0.12 <= time.perf_counter() - started < 3.0


@pytest.mark.anyio
async def test_retry_after_beyond_the_limit_is_not_waited_for(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.fail_times = 5
    fake.behaviour.retry_after = "120"
    exc = await _error(base_url, retry=RetryPolicy(max_retry_after=60))
    assert isinstance(exc, ProviderError)
    assert exc.status == 429
    assert "rate limited" in str(exc)
    assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_http_date_in_the_past_falls_back_to_backoff(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.fail_times = 1
    fake.behaviour.retry_after = email.utils.formatdate(time.time() - 60, usegmt=True)
    await _open(base_url)
    assert len(fake.requests) == 2


@pytest.mark.anyio
async def test_retries_are_capped(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.fail_times = 10
    fake.behaviour.fail_status = 503
    exc = await _error(base_url, retry=RetryPolicy(max_retries=3, initial_delay=0.01))
    assert isinstance(exc, ProviderError)
    assert exc.status == 503 and exc.retryable
    assert "4 attempts" in str(exc)
    assert len(fake.requests) == 4


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "should_retry", "attempts"),
    [(500, "false", 1), (400, "true", 3), (400, None, 1), (408, None, 3), (409, None, 3)],
)
async def test_x_should_retry_and_retryable_statuses(
    fake: FakeLLM, base_url: str, status: int, should_retry: str | None, attempts: int
) -> None:
    fake.behaviour.fail_times = 10
    fake.behaviour.fail_status = status
    fake.behaviour.should_retry = should_retry
    exc = await _error(base_url)
    assert isinstance(exc, ProviderError)
    assert exc.status == status
    assert len(fake.requests) == attempts


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (401, "MY_KEY_VAR"),
        (403, "MY_KEY_VAR"),
        (404, "model name and the base URL"),
        (429, "rate limited"),
        (500, "try again later"),
    ],
)
async def test_final_errors_carry_a_hint(
    fake: FakeLLM, base_url: str, status: int, hint: str
) -> None:
    fake.behaviour.error_status = status
    fake.behaviour.error_message = "provider says no"
    exc = await _error(base_url, key_env="MY_KEY_VAR", retry=RetryPolicy(max_retries=0))
    assert isinstance(exc, ProviderError)
    assert exc.status == status
    assert "provider says no" in str(exc)
    assert hint in str(exc)


@pytest.mark.anyio
async def test_secrets_in_url_body_and_headers_never_surface(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.error_status = 404
    fake.behaviour.error_message = f"no such key {SECRET}"
    exc = await _error(
        base_url,
        params={"key": SECRET},
        headers={"Authorization": f"Bearer {SECRET}"},
        secrets=[SECRET],
    )
    assert isinstance(exc, ProviderError)
    assert "no such key ***" in str(exc)
    assert_secret_hidden(exc, SECRET)
    assert fake.requests[0].query == f"key={SECRET}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.anyio
async def test_connection_refused_is_retried_then_reported_without_the_key() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/{SECRET}/v1/chat/completions"
    started = time.perf_counter()
    with anyio.fail_after(TIMEOUT):
        async with httpx.AsyncClient() as client:
            with pytest.raises(ProviderError) as info:
                async with open_stream(
                    client, "POST", url, provider="demo", json=BODY, retry=FAST, secrets=[SECRET]
                ):
                    pass
    assert "could not reach demo" in str(info.value)
    assert "3 attempts" in str(info.value)
    assert info.value.retryable
    assert isinstance(info.value.__cause__, httpx.ConnectError)  # the cause survives
    assert_secret_hidden(info.value, SECRET)
    assert time.perf_counter() - started < 5


@pytest.mark.anyio
async def test_url_without_scheme_is_a_config_error() -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(ConfigError, match="base URL"):
            async with open_stream(client, "GET", "localhost:1/x", provider="demo"):
                pass


@pytest.mark.anyio
async def test_first_byte_timeout_is_retried_then_reported(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.headers_delay = 1.0
    exc = await _error(base_url, timeouts=Timeouts(first_byte=0.1), retry=RetryPolicy(1, 0.01))
    assert isinstance(exc, ProviderError)
    assert "no response within 0.1 s" in str(exc)
    assert len(fake.requests) == 2


@pytest.mark.anyio
async def test_idle_gap_interrupts_and_closes(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.hang_after = 1
    with anyio.fail_after(TIMEOUT):
        async with (
            httpx.AsyncClient() as client,
            open_stream(
                client, "POST", f"{base_url}/v1/chat/completions", provider="demo", json=BODY
            ) as response,
        ):
            chunks = []
            with pytest.raises(StreamInterrupted, match="stalled") as info:
                async for chunk in iter_body(response, provider="demo", idle_timeout=0.2):
                    chunks.append(chunk)
        assert await server_saw_disconnect(fake)
    assert b"chatcmpl" in b"".join(chunks)
    assert not info.value.retryable


@pytest.mark.anyio
async def test_dropped_body_is_interrupted_with_the_cause_kept(
    fake: FakeLLM, base_url: str
) -> None:
    fake.behaviour.drop_after = 2
    exc = await _error(base_url)
    assert isinstance(exc, StreamInterrupted)
    assert isinstance(exc.__cause__, httpx.RemoteProtocolError)


@pytest.mark.anyio
async def test_leaving_early_closes_the_response(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.token_interval = 0.05
    fake.behaviour.text = "word " * 200
    with anyio.fail_after(TIMEOUT):
        async with httpx.AsyncClient() as client:
            async with open_stream(
                client, "POST", f"{base_url}/v1/chat/completions", provider="demo", json=BODY
            ) as response:
                body = iter_body(response, provider="demo", idle_timeout=5.0)
                async with aclosing(body):
                    async for _ in body:
                        break
            assert response.is_closed
            assert await server_saw_disconnect(fake)
