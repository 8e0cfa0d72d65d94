"""Streaming HTTP for network providers: retries before the first byte, timeouts, error parsing.

LLM and TTS providers open their request with :func:`open_stream` and read the body with
:func:`iter_body` (raw bytes) or :func:`iter_sse` (server-sent events); :func:`iter_sse_json`
does all of that for the chat APIs that stream JSON events, and :func:`provider_key` decides
which key, if any, a provider sends. Retries follow the rules of
the official OpenAI and Anthropic SDKs; once a body byte has been delivered nothing is retried,
because the caller may already have spoken it. API keys never reach an exception message.
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import os
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import anyio
import httpx
from httpx_sse import EventSource, ServerSentEvent

from voicepipe.errors import ConfigError, MissingKey, ProviderError, StreamInterrupted
from voicepipe.lifecycle import Lifecycle

__all__ = [
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUTS",
    "ClientOwner",
    "RetryPolicy",
    "Timeouts",
    "env_key",
    "iter_body",
    "iter_sse",
    "iter_sse_json",
    "json_object",
    "open_stream",
    "provider_key",
    "provider_message",
    "redact",
    "reject_json",
    "reported_error",
    "stream_error",
]

# Where open_stream leaves the first-byte deadline for iter_body (a perf_counter value).
_FIRST_BYTE_DEADLINE = "voicepipe.first_byte_deadline"
# Closing a response must not hang a cancelled pipeline on a dead peer.
_CLOSE_TIMEOUT = 2.0
_MAX_ERROR_BODY = 64 * 1024


@dataclass(frozen=True)
class Timeouts:
    """How long to wait, in seconds, at each phase of a streaming request."""

    connect: float = 10.0
    first_byte: float = 60.0  # request sent -> response headers + first body bytes
    idle: float = 30.0  # max gap between body chunks


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a request that failed before any body byte arrived."""

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0  # a retry-after larger than this means: don't retry


# Shared defaults, for signatures (a call in a default argument trips linters).
DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_RETRY = RetryPolicy()


def redact(text: str, secrets: Sequence[str]) -> str:
    """Return ``text`` with every non-empty secret replaced by ``***``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def env_key(var: str, provider: str) -> str:
    """Return the API key in environment variable ``var``, or raise ConfigError naming it."""
    value = os.environ.get(var, "").strip()
    if not value:
        raise MissingKey(provider, var)
    return value


def provider_key(
    api_key: str | None, *, official: bool, var: str, provider: str
) -> tuple[str | None, str | None]:
    """The key to send (None: none) and the environment variable it came from (None: not one).

    An explicit ``api_key`` wins. Otherwise only the provider's official host gets the key in
    ``var`` (ConfigError if it is unset), so that key never reaches a third-party server.
    """
    if api_key is not None or not official:
        return api_key or None, None
    return env_key(var, provider), var


def json_object(data: str | bytes) -> dict[str, Any] | None:
    """``data`` parsed as a JSON object, or None if it is not valid JSON or not an object."""
    try:
        value = jsonlib.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def provider_message(payload: object) -> str | None:
    """Extract the human-readable error message from a provider's JSON error body, if any.

    Knows OpenAI ``{"error": {"message"}}``, Anthropic ``{"type": "error", "error": {...}}``,
    Ollama ``{"error": "..."}``, FastAPI ``{"detail": ...}`` and flat ``{"message": ...}``.
    """
    if isinstance(payload, str):
        return payload.strip() or None
    if isinstance(payload, list):
        # FastAPI validation errors: [{"loc": [...], "msg": "...", "type": "..."}]
        parts = []
        for item in payload:
            if isinstance(item, dict) and isinstance(item.get("msg"), str):
                loc = item.get("loc")
                where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
                parts.append(f"{where}: {item['msg']}" if where else item["msg"])
            else:
                text = provider_message(item)
                if text:
                    parts.append(text)
        return "; ".join(parts) or None
    if not isinstance(payload, dict):
        return None
    # A message beside an error code wins
    # (Kokoro: {"detail": {"error": "invalid_model", "message": ...}}).
    message = payload.get("message") or payload.get("msg")
    if isinstance(message, str) and message.strip():
        return message.strip()
    for key in ("error", "detail"):
        inner = payload.get(key)
        if inner:
            text = provider_message(inner)
            if text:
                return text
            if isinstance(inner, dict):
                kind = inner.get("type") or inner.get("code") or inner.get("status")
                if kind:
                    return str(kind)
    return None


def _parse_error_body(body: bytes, reason: str) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    if text:
        try:
            message = provider_message(jsonlib.loads(text))
        except ValueError:
            message = None
        if message:
            return message
        return text if len(text) <= 300 else text[:300] + "…"
    return reason or "no error message"


def _hint(status: int, key_env: str | None, url: str) -> str:
    if status in (401, 403):
        where = f"the {key_env} environment variable" if key_env else "the API key"
        return f"check {where} (is it set, current and allowed to use this model?)"
    if status == 404:
        return f"check the model name and the base URL ({url})"
    if status == 429:
        return "rate limited: wait a little, lower the request rate or check your plan's quota"
    if status in (408, 504):
        return "the server timed out; try again"
    if status >= 500:
        return "the server failed; try again later"
    return "check the request options"


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asked us to wait (retry-after-ms, then retry-after), or None."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return float(when.timestamp() - time.time())


def _should_retry(response: httpx.Response) -> bool:
    override = response.headers.get("x-should-retry", "").strip().lower()
    if override == "true":
        return True
    if override == "false":
        return False
    return response.status_code in (408, 409, 429) or response.status_code >= 500


def _backoff(retry: RetryPolicy, retries_done: int) -> float:
    delay = min(retry.initial_delay * 2.0**retries_done, retry.max_delay)
    return delay * (1 - 0.25 * random.random())


class _RedactedCause(Exception):
    """Stands in for a foreign exception whose text contained a secret."""


def _safe_cause(exc: BaseException, secrets: Sequence[str]) -> BaseException:
    """Return ``exc``, or a redacted stand-in if its str or repr would reveal a secret."""
    text = f"{exc}\n{exc!r}"
    if any(secret and secret in text for secret in secrets):
        return _RedactedCause(f"{type(exc).__name__}: {redact(str(exc), secrets)}")
    return exc


def _describe(exc: BaseException, secrets: Sequence[str]) -> str:
    text = redact(str(exc), secrets).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _close(response: httpx.Response) -> None:
    # Shielded so that a cancelled caller still closes the connection (the server sees it go).
    with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
        await response.aclose()


async def drain(rest: AsyncIterator[object], seconds: float = 0.25) -> None:
    """Read what follows a stream's end marker, briefly, so its connection can be reused.

    httpx only returns a connection to the pool when the body was read to its end; servers
    close the body right after ``[DONE]``/``message_stop``/``done``, so this is one read.
    """
    with anyio.move_on_after(seconds):
        try:
            async for _ in rest:
                pass
        except (ProviderError, httpx.HTTPError):
            pass  # the answer is complete; a bad tail only costs the connection


Owner = TypeVar("Owner", bound="ClientOwner")


class ClientOwner(Lifecycle):
    """Holds a provider's httpx client: the caller's, or one created on first use and reused.

    Reusing one client keeps connections alive between sentences (no new TLS handshake per
    request). Close an owned client with ``aclose()`` or ``async with provider:``.
    """

    def __init__(self, client: httpx.AsyncClient | None) -> None:
        self._client = client
        self._owns_client = client is None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None or (self._owns_client and self._client.is_closed):
            self._client = httpx.AsyncClient()
        return self._client

    async def aclose(self) -> None:
        """Close the client if the provider created it (a caller's client is left open)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()

    async def __aenter__(self: Owner) -> Owner:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def stream_error(message: str, *, provider: str, started: bool) -> ProviderError:
    """A failure inside a 2xx body: StreamInterrupted once output was used, else ProviderError."""
    if started:
        return StreamInterrupted(message, provider=provider)
    return ProviderError(message, provider=provider)


def reported_error(
    payload: object, *, provider: str, started: bool, secrets: Sequence[str] = ()
) -> ProviderError:
    """The error object a provider sent inside its stream, as a :func:`stream_error`."""
    message = redact(provider_message(payload) or "unknown error", secrets)
    return stream_error(
        f"{provider} reported an error mid-stream: {message}; try again",
        provider=provider,
        started=started,
    )


async def reject_json(response: httpx.Response, *, provider: str, secrets: Sequence[str]) -> None:
    """Raise ProviderError if a 2xx streaming response is a plain JSON document instead.

    Some servers answer ``stream: true`` with one JSON object (an error, or a whole reply);
    reading it as a stream would silently produce nothing.
    """
    content_type = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != "application/json":
        return
    body = b""
    with anyio.move_on_after(_CLOSE_TIMEOUT):
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > _MAX_ERROR_BODY:
                break
    message = _parse_error_body(body, "")
    raise ProviderError(
        redact(
            f"{provider} answered with a JSON document instead of a stream ({message}); "
            "check that the server supports streaming at this URL",
            secrets,
        ),
        provider=provider,
        status=response.status_code,
    )


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    provider: str,
    json: object | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    timeouts: Timeouts = Timeouts(),
    retry: RetryPolicy = RetryPolicy(),
    secrets: Sequence[str] = (),
    key_env: str | None = None,
) -> AsyncIterator[httpx.Response]:
    """Send the request and yield the 2xx response with its body unread; close it on exit.

    Before any body byte is delivered, connection errors, first-byte timeouts and 408/409/429/5xx
    are retried (honouring retry-after-ms, retry-after and x-should-retry) with capped exponential
    backoff, at most ``retry.max_retries`` times. A final failure raises ProviderError carrying
    the provider's own message, the status and a hint; ``key_env`` names the key's variable.
    """
    request = client.build_request(
        method,
        url,
        json=json,
        headers=dict(headers or {}),
        params=dict(params) if params else None,
        timeout=httpx.Timeout(
            connect=timeouts.connect,
            read=None,  # idle and first-byte limits are enforced here with anyio
            write=timeouts.first_byte,
            pool=timeouts.connect,
        ),
    )
    shown_url = redact(str(request.url.copy_with(query=None)), secrets)
    attempt = 0
    while True:
        failure: BaseException | None = None
        error: ProviderError | None = None
        config_error: ConfigError | None = None
        response: httpx.Response | None = None
        deadline = time.perf_counter() + timeouts.first_byte
        try:
            with anyio.fail_after(timeouts.first_byte):
                response = await client.send(request, stream=True)
        except TimeoutError as exc:
            failure = exc
            error = ProviderError(
                f"{provider} sent no response within {timeouts.first_byte:g} s ({shown_url}); "
                "the server may be overloaded or still loading the model: try again or raise "
                "the first-byte timeout",
                provider=provider,
                retryable=True,
            )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            failure = exc
            config_error = ConfigError(
                f"{provider}: cannot request {shown_url}: {_describe(exc, secrets)}; "
                "check the base URL (it needs http:// or https://)"
            )
        except httpx.TransportError as exc:
            failure = exc
            error = ProviderError(
                f"could not reach {provider} at {shown_url} ({_describe(exc, secrets)}); "
                "check the base URL and that the server is running",
                provider=provider,
                retryable=True,
            )
        if config_error is not None and failure is not None:
            raise config_error from _safe_cause(failure, secrets)

        delay: float | None = None
        if response is not None and response.is_success:
            response.extensions[_FIRST_BYTE_DEADLINE] = deadline
            try:
                yield response
            finally:
                await _close(response)
            return

        if response is not None:
            retryable = _should_retry(response)
            retry_after = _retry_after(response.headers) if retryable else None
            worth_retrying = retryable and attempt < retry.max_retries
            if retry_after is not None and retry_after > retry.max_retry_after:
                worth_retrying = False  # the server asked for a longer wait than we will make
            elif retry_after is not None and retry_after > 0:
                delay = retry_after
            if not worth_retrying:
                raise await _status_error(
                    response, provider, timeouts, secrets, key_env, shown_url, attempt, retryable
                )
            await _close(response)
        elif error is not None and failure is not None:
            if not error.retryable or attempt >= retry.max_retries:
                if attempt:
                    error.args = (f"{error.args[0]} (after {attempt + 1} attempts)",)
                raise error from _safe_cause(failure, secrets)
        await anyio.sleep(delay if delay is not None else _backoff(retry, attempt))
        attempt += 1


async def _status_error(
    response: httpx.Response,
    provider: str,
    timeouts: Timeouts,
    secrets: Sequence[str],
    key_env: str | None,
    shown_url: str,
    attempt: int,
    retryable: bool,
) -> ProviderError:
    """Read a failed response's body (bounded), close it and describe it as a ProviderError."""
    body = b""
    try:
        with anyio.move_on_after(timeouts.idle):
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > _MAX_ERROR_BODY:
                    break
    except httpx.HTTPError:
        pass  # the status alone still says what went wrong
    finally:
        await _close(response)
    status = response.status_code
    message = _parse_error_body(body, response.reason_phrase)
    tries = f" after {attempt + 1} attempts" if attempt else ""
    text = (
        f"{provider} returned HTTP {status}{tries}: {message} — {_hint(status, key_env, shown_url)}"
    )
    return ProviderError(
        redact(text, secrets), provider=provider, status=status, retryable=retryable
    )


async def iter_body(
    response: httpx.Response, *, provider: str, idle_timeout: float
) -> AsyncGenerator[bytes, None]:
    """Yield the decoded body chunks, each within ``idle_timeout`` of the previous one.

    The first chunk may take until the first-byte deadline set by :func:`open_stream`. A dropped
    connection or a stall raises StreamInterrupted; nothing is retried, output may have been used.
    """
    deadline = response.extensions.get(_FIRST_BYTE_DEADLINE)
    if isinstance(deadline, float):
        first_wait = max(deadline - time.perf_counter(), 0.0)
        wait, stall = first_wait, "the first data"
    else:
        wait, stall = idle_timeout, "data"
    chunks = response.aiter_bytes()
    failure: BaseException | None = None
    message = ""
    try:
        while True:
            try:
                with anyio.fail_after(wait):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                failure = exc
                message = (
                    f"{provider} stalled: no {stall} for {wait:.3g} s; "
                    "try again, or raise the timeout if the server is just slow"
                )
                break
            except httpx.TransportError as exc:
                failure = exc
                message = (
                    f"the connection to {provider} dropped mid-stream "
                    f"({_describe(exc, ())}); try again"
                )
                break
            if chunk:
                wait, stall = idle_timeout, "data"
                yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()
    raise StreamInterrupted(message, provider=provider) from failure


async def _strip_bom(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    first = True
    async for chunk in chunks:
        if first:
            chunk = chunk.removeprefix(b"\xef\xbb\xbf")
            first = not chunk
        if chunk:
            yield chunk


async def iter_sse(
    response: httpx.Response, *, provider: str, idle_timeout: float
) -> AsyncGenerator[ServerSentEvent, None]:
    """Yield the server-sent events of ``response``, parsed by httpx-sse, under the idle timeout.

    Comment lines (keep-alives) are dropped; CR, LF and CRLF line ends are all accepted.
    """
    body = iter_body(response, provider=provider, idle_timeout=idle_timeout)
    # Re-wrap the timed byte stream so httpx-sse's decoder (public API only) reads from it.
    relay = httpx.Response(
        200, headers={"content-type": "text/event-stream; charset=utf-8"}, content=_strip_bom(body)
    )
    events = EventSource(relay).aiter_sse()
    try:
        async for event in events:
            yield event
    finally:
        with anyio.CancelScope(shield=True):
            await events.aclose()
            await relay.aclose()


async def iter_sse_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    provider: str,
    json: object,
    headers: Mapping[str, str],
    timeouts: Timeouts,
    retry: RetryPolicy,
    secrets: Sequence[str],
    key_env: str | None,
) -> AsyncGenerator[tuple[ServerSentEvent, dict[str, Any] | None], None]:
    """POST ``json`` to an SSE endpoint; yield each event that has data, with that data parsed.

    The parsed data is None when it is not a JSON object: the caller knows whether that is an
    end marker or a malformed event. A JSON document sent instead of a stream raises
    ProviderError.
    """
    async with (
        open_stream(
            client,
            "POST",
            url,
            provider=provider,
            json=json,
            headers={"Accept": "text/event-stream", **headers},
            timeouts=timeouts,
            retry=retry,
            secrets=secrets,
            key_env=key_env,
        ) as response,
        aclosing(iter_sse(response, provider=provider, idle_timeout=timeouts.idle)) as events,
    ):
        await reject_json(response, provider=provider, secrets=secrets)
        async for event in events:
            if event.data.strip():
                yield event, json_object(event.data)
