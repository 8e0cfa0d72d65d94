"""The wire: reading JSON requests, live streaming responses, SSE frames and payloads."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from voicepipe.apps.server.guards import HTTPError, bad_request, error_response
from voicepipe.audio.chunk import AudioChunk
from voicepipe.errors import VoicepipeError
from voicepipe.llm.base import Message as ChatMessage

ROLES = ("system", "user", "assistant")


Emit = Callable[[bytes], Awaitable[None]]


class LiveResponse(Response):
    """A streamed response driven by ``produce(emit)``, cancelled at once on disconnect.

    Headers go out with the first ``emit``, so an error raised before any output still gets
    a proper status code; after that, the producer reports errors in-band. ``on_close`` runs
    however the response ends (it frees the session slot).
    """

    def __init__(
        self,
        produce: Callable[[Emit], Awaitable[None]],
        *,
        media_type: str,
        headers: Mapping[str, str] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        # Not Response.__init__: it would declare an empty body's content-length.
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)
        self.produce = produce
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def emit(data: bytes) -> None:
            nonlocal started
            if not started:
                started = True
                await send(
                    {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
                )
            if data:
                await send({"type": "http.response.body", "body": data, "more_body": True})

        try:
            async with anyio.create_task_group() as tg:

                async def watch_disconnect() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(watch_disconnect)
                try:
                    await self.produce(emit)
                except HTTPError as exc:
                    if started:
                        raise
                    await error_response(exc.status, str(exc), exc.kind, exc.headers)(
                        scope, receive, send
                    )
                else:
                    await emit(b"")
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                tg.cancel_scope.cancel()
        except OSError:
            pass  # the client went away while we were sending
        finally:
            if self.on_close is not None:
                self.on_close()


def sse(event: str, data: Mapping[str, Any]) -> bytes:
    """One Server-Sent Event: a name and a single-line JSON payload."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def error_kind(exc: BaseException) -> str:
    return type(exc).__name__


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The request's JSON object, refusing bodies over ``limit`` bytes before reading them."""
    media = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if media.lower() not in ("application/json", ""):
        raise HTTPError(
            415, f"send the body as application/json, not {media[:60]}", "invalid_request_error"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, f"request body over {limit} bytes", "request_too_large")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise HTTPError(413, f"request body over {limit} bytes", "request_too_large")
    try:
        data = json.loads(body)
    except ValueError:
        raise HTTPError(400, "the body must be JSON", "invalid_request_error") from None
    if not isinstance(data, dict):
        raise HTTPError(400, "the body must be a JSON object", "invalid_request_error")
    return data


def choose(table: Mapping[str, Any], wanted: Any, kind: str) -> str:
    """The key of ``table`` a client asked for (the first, by default); only those are allowed."""
    if wanted is None:
        return next(iter(table))
    if isinstance(wanted, str) and wanted in table:
        return wanted
    raise bad_request(f"unknown {kind} {wanted!r}: this server offers {', '.join(table)}")


def parse_messages(body: Mapping[str, Any], limit: int) -> list[ChatMessage]:
    """``messages`` (a chat) or ``prompt`` (one user turn), checked."""
    if "messages" in body:
        raw = body["messages"]
        if not isinstance(raw, list) or not raw:
            raise bad_request("messages must be a non-empty list of {role, content} objects")
        if len(raw) > limit:
            raise bad_request(f"too many messages (at most {limit})")
        messages: list[ChatMessage] = []
        for m in raw:
            role = m.get("role") if isinstance(m, dict) else None
            content = m.get("content") if isinstance(m, dict) else None
            if role not in ROLES or not isinstance(content, str):
                raise bad_request(
                    "each message needs a role (system, user or assistant) and string content"
                )
            messages.append({"role": role, "content": content})
        if not any(m["role"] == "user" and m["content"].strip() for m in messages):
            raise bad_request("messages need at least one non-empty user message")
        return messages
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad_request("give a non-empty prompt (a string) or messages")
    return [{"role": "user", "content": prompt}]


def audio_payload(chunk: AudioChunk, sequence: int) -> dict[str, Any]:
    return {
        "index": chunk.text_index,
        "seq": sequence,
        "sample_rate": chunk.sample_rate,
        "format": "pcm_s16le",
        "seconds": round(chunk.duration, 4),
        "data": base64.b64encode(chunk.samples.astype("<i2").tobytes()).decode("ascii"),
    }


def error_payload(exc: VoicepipeError, stage: str) -> dict[str, Any]:
    return {
        "stage": stage,
        "type": error_kind(exc),
        "message": str(exc),
        "retryable": bool(getattr(exc, "retryable", False)),
    }
