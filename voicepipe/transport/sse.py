"""Server-sent events over a timed body, parsed by httpx-sse (the WHATWG framing rules)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import anyio
import httpx
from httpx_sse import EventSource, ServerSentEvent

from voicepipe.transport.stream import iter_body, reject_json
from voicepipe.transport.wording import json_object

__all__ = ["SSEFrame", "iter_sse", "iter_sse_json"]

# An event and its data parsed as a JSON object (None when the data is not one).
SSEFrame = tuple[ServerSentEvent, dict[str, Any] | None]


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
    response: httpx.Response, *, provider: str, idle_timeout: float, secrets: Sequence[str]
) -> AsyncGenerator[SSEFrame, None]:
    """Yield each event of ``response`` that has data, with that data parsed as a JSON object.

    The parsed data is None when it is not a JSON object: the caller knows whether that is an
    end marker or a malformed event. A JSON document sent instead of a stream raises
    ProviderError.
    """
    await reject_json(response, provider=provider, secrets=secrets)
    events = iter_sse(response, provider=provider, idle_timeout=idle_timeout)
    async with aclosing(events):
        async for event in events:
            if event.data.strip():
                yield event, json_object(event.data)
