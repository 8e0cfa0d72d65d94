"""Streaming requests: open with retries before the first byte, read the body under timeouts.

:func:`open_stream` sends a request and hands over the 2xx response with its body unread;
:func:`iter_body` reads that body. Once a body byte has been delivered nothing is retried,
because the caller may already have spoken it. API keys never reach an exception message.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypedDict, Unpack

import anyio
import httpx

from voicepipe.errors import ConfigError, ProviderError, StreamInterrupted, VoicepipeError
from voicepipe.transport.keys import redact, redacted_cause
from voicepipe.transport.retry import backoff, retry_delay, should_retry
from voicepipe.transport.settings import DEFAULT_RETRY, DEFAULT_TIMEOUTS, RetryPolicy, Timeouts
from voicepipe.transport.wording import (
    body_message,
    describe,
    media_type,
    provider_message,
    public_url,
    read_error_body,
    status_error,
)

__all__ = ["RequestBody", "StreamProgress", "drain", "iter_body", "open_stream", "reject_json"]

# Where open_stream leaves the first-byte deadline for iter_body (a perf_counter value).
_FIRST_BYTE_DEADLINE = "voicepipe.first_byte_deadline"
# Closing a response must not hang a cancelled pipeline on a dead peer.
_CLOSE_TIMEOUT = 2.0


class RequestBody(TypedDict, total=False):
    """What a request carries besides headers: a JSON body or a multipart form, and a query."""

    json: object
    data: Mapping[str, str]
    files: Mapping[str, tuple[str, bytes, str]]  # field -> (file name, content, media type)
    params: Mapping[str, str]


async def _close(response: httpx.Response) -> None:
    # Shielded so that a cancelled caller still closes the connection (the server sees it go).
    with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
        await response.aclose()


def _send_error(
    exc: Exception, *, provider: str, url: str, timeouts: Timeouts, secrets: Sequence[str]
) -> VoicepipeError:
    """What a request that got no response at all raises: ConfigError for a bad URL."""
    if isinstance(exc, TimeoutError):
        return ProviderError(
            f"{provider} sent no response within {timeouts.first_byte:g} s ({url}); "
            "the server may be overloaded or still loading the model: try again or raise "
            "the first-byte timeout",
            provider=provider,
            retryable=True,
        )
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ConfigError(
            f"{provider}: cannot request {url}: {describe(exc, secrets)}; "
            "check the base URL (it needs http:// or https://)"
        )
    return ProviderError(
        f"could not reach {provider} at {url} ({describe(exc, secrets)}); "
        "check the base URL and that the server is running, then try again",
        provider=provider,
        retryable=True,
    )


async def _send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    provider: str,
    url: str,
    timeouts: Timeouts,
    secrets: Sequence[str],
) -> httpx.Response:
    """Send ``request`` and wait at most the first-byte timeout for the response's headers."""
    try:
        with anyio.fail_after(timeouts.first_byte):
            return await client.send(request, stream=True)
    except (TimeoutError, httpx.TransportError, httpx.InvalidURL) as exc:
        failure: Exception = exc
    # Raised here, outside the except block, so the unredacted exception is not its context.
    error = _send_error(failure, provider=provider, url=url, timeouts=timeouts, secrets=secrets)
    raise error from redacted_cause(failure, secrets)


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    provider: str,
    headers: Mapping[str, str] | None = None,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    retry: RetryPolicy = DEFAULT_RETRY,
    secrets: Sequence[str] = (),
    key_env: str | None = None,
    **body: Unpack[RequestBody],
) -> AsyncIterator[httpx.Response]:
    """Send the request and yield the 2xx response with its body unread; close it on exit.

    Before any body byte is delivered, connection errors, first-byte timeouts and 408/409/429/5xx
    are retried (honouring retry-after-ms, retry-after and x-should-retry) with capped exponential
    backoff, at most ``retry.max_retries`` times. A final failure raises ProviderError carrying
    the provider's own message, the status and a hint; ``key_env`` names the key's variable.
    ``body`` is what the request sends (:class:`RequestBody`).
    """
    request = client.build_request(
        method,
        url,
        headers=dict(headers or {}),
        timeout=httpx.Timeout(
            connect=timeouts.connect,
            read=None,  # idle and first-byte limits are enforced here with anyio
            write=timeouts.first_byte,
            pool=timeouts.connect,
        ),
        **body,
    )
    # No user:password@, query or fragment from the URL in any message (issue 18).
    shown_url = redact(public_url(str(request.url)), secrets)
    retries = 0
    while True:
        deadline = time.perf_counter() + timeouts.first_byte
        try:
            response = await _send(
                client,
                request,
                provider=provider,
                url=shown_url,
                timeouts=timeouts,
                secrets=secrets,
            )
        except ProviderError as exc:
            if retries >= retry.max_retries:
                if retries:
                    exc.args = (f"{exc.args[0]} (after {retries + 1} attempts)",)
                raise
            delay = backoff(retry, retries)
        else:
            if response.is_success:
                response.extensions[_FIRST_BYTE_DEADLINE] = deadline
                try:
                    yield response
                finally:
                    await _close(response)
                return
            retrying = retry_delay(response, retry, retries)
            if retrying is None:
                try:
                    error_body = await read_error_body(response, seconds=timeouts.idle)
                finally:
                    await _close(response)
                raise status_error(
                    response,
                    error_body,
                    provider=provider,
                    url=shown_url,
                    attempts=retries + 1,
                    retryable=should_retry(response),
                    key_env=key_env,
                    secrets=secrets,
                )
            await _close(response)
            delay = retrying
        await anyio.sleep(delay)
        retries += 1


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
                    f"({describe(exc, ())}); try again"
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


async def reject_json(response: httpx.Response, *, provider: str, secrets: Sequence[str]) -> None:
    """Raise ProviderError if a 2xx streaming response is a plain JSON document instead.

    Some servers answer ``stream: true`` with one JSON object (an error, or a whole reply);
    reading it as a stream would silently produce nothing.
    """
    if media_type(response) != "application/json":
        return
    message = body_message(await read_error_body(response, seconds=_CLOSE_TIMEOUT), "")
    raise ProviderError(
        redact(
            f"{provider} answered with a JSON document instead of a stream ({message}); "
            "check that the server supports streaming at this URL",
            secrets,
        ),
        provider=provider,
        status=response.status_code,
    )


class StreamProgress:
    """How far one stream got: whether output was delivered decides how its failures raise."""

    def __init__(self, provider: str, secrets: Sequence[str] = ()) -> None:
        self.provider = provider
        self.secrets = tuple(secrets)
        self.started = False  # some output was handed to the caller
        self.ended = False  # the stream's end marker arrived

    def error(self, message: str) -> ProviderError:
        """A failure in a 2xx body: StreamInterrupted once output was used, else ProviderError."""
        kind = StreamInterrupted if self.started else ProviderError
        return kind(message, provider=self.provider)

    def reported(self, payload: object) -> ProviderError:
        """The error object the provider sent inside its stream, as an :meth:`error`."""
        message = redact(provider_message(payload) or "unknown error", self.secrets)
        return self.error(f"{self.provider} reported an error mid-stream: {message}; try again")

    def excerpt(self, frame: str | bytes) -> str:
        """The start of a frame that could not be read, quoted, for an error message."""
        return redact(repr(frame[:120]), self.secrets)

    def json_frame(
        self, data: dict[str, Any] | None, frame: str | bytes, *, kind: str, check: str
    ) -> dict[str, Any]:
        """``data``, the JSON object parsed from ``frame``, unless it is malformed (None) or
        the provider's report of an error: those raise, ``kind`` and ``check`` word it."""
        if data is None:
            raise self.error(
                f"{self.provider} sent a malformed {kind} {self.excerpt(frame)}; {check}"
            )
        if data.get("error"):
            raise self.reported(data)
        return data
