"""The wire: reading JSON requests, live streaming responses, SSE frames and payloads."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from voicepipe.apps.server.guards import HTTPError, bad_request, error_response
from voicepipe.audio.chunk import AudioChunk
from voicepipe.errors import ProviderError, StreamInterrupted, VoicepipeError
from voicepipe.llm.base import Message as ChatMessage

ROLES = ("system", "user", "assistant")
MAX_JSON_DEPTH = 32  # far above any request's shape; deeper is an attack, not a request


Emit = Callable[[bytes], Awaitable[None]]


class LiveResponse(Response):
    """A streamed response driven by ``produce(emit)``, cancelled at once on disconnect.

    Headers go out with the first ``emit``, so an error raised before any output still gets
    a proper status code; after that, the producer reports errors in-band. ``on_close`` runs
    however the response ends (it frees the session slot).

    With ``heartbeat`` (an SSE comment), it is sent whenever nothing else was for
    ``heartbeat_s``: a client that closed its side is then found by the next write even while
    the answer waits on a slow model, and proxies keep the stream open.
    """

    def __init__(
        self,
        produce: Callable[[Emit], Awaitable[None]],
        *,
        media_type: str,
        headers: Mapping[str, str] | None = None,
        on_close: Callable[[], None] | None = None,
        heartbeat: bytes = b"",
        heartbeat_s: float = 1.0,
    ) -> None:
        # Not Response.__init__: it would declare an empty body's content-length.
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)
        self.produce = produce
        self.on_close = on_close
        self.heartbeat = heartbeat
        self.heartbeat_s = heartbeat_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False
        last_sent = time.monotonic()
        sending = anyio.Lock()  # the heartbeat and the producer take turns

        async def emit(data: bytes) -> None:
            nonlocal started, last_sent
            async with sending:
                if not started:
                    started = True
                    await send(
                        {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
                    )
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                last_sent = time.monotonic()

        async def beat() -> None:
            while True:
                await anyio.sleep(max(0.0, last_sent + self.heartbeat_s - time.monotonic()))
                if started and time.monotonic() - last_sent >= self.heartbeat_s:
                    await emit(self.heartbeat)

        try:
            async with anyio.create_task_group() as tg:

                async def watch_disconnect() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(watch_disconnect)
                if self.heartbeat:
                    tg.start_soon(beat)
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


async def read_json(request: Request, limit: int, seconds: float = 30.0) -> dict[str, Any]:
    """The request's JSON object, refusing bodies over ``limit`` bytes before reading them.

    The body must say it is JSON: a browser may send any other type from another site's page
    without asking (a "simple" request), but not ``application/json``. It must arrive within
    ``seconds`` (408), so a client sending a byte at a time cannot hold a connection.
    Nesting deeper than :data:`MAX_JSON_DEPTH` and text that is not valid Unicode are 400s.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip()
    if media.lower() != "application/json":
        given = f"not {media[:60]}" if media else "with a Content-Type header"
        raise HTTPError(415, f"send the body as application/json, {given}", "invalid_request_error")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, f"request body over {limit} bytes", "request_too_large")
    body = bytearray()
    with anyio.move_on_after(seconds) as deadline:
        try:
            async for piece in request.stream():
                body += piece
                if len(body) > limit:
                    raise HTTPError(413, f"request body over {limit} bytes", "request_too_large")
        except ClientDisconnect:  # nobody is left to answer; not a server error
            raise HTTPError(400, "the client went away", "invalid_request_error") from None
    if deadline.cancelled_caught:
        raise HTTPError(
            408, f"the request body did not arrive within {seconds:g} s", "request_timeout"
        )
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad_request("the body must be UTF-8") from None
    except RecursionError:
        raise bad_request(f"the JSON is nested too deep (at most {MAX_JSON_DEPTH})") from None
    except ValueError:
        raise bad_request("the body must be JSON") from None
    if not isinstance(data, dict):
        raise bad_request("the body must be a JSON object")
    check_values(data)
    return data


def check_values(data: Any) -> None:
    """Refuse nesting past :data:`MAX_JSON_DEPTH` and strings that are not valid Unicode.

    JSON's ``\\ud800`` escapes decode to lone surrogates, which no encoder downstream (the LLM
    request, a log line) can write. Iterative, so depth costs no stack.
    """
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise bad_request(
                    "text must be valid Unicode (a lone surrogate was sent)"
                ) from None
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise bad_request(f"the JSON is nested too deep (at most {MAX_JSON_DEPTH})")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                pending.append((key, depth))
                pending.append((item, depth + 1))


def shown(value: Any) -> str:
    """A client's value quoted for an error message, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def choose(table: Mapping[str, Any], wanted: Any, kind: str) -> str:
    """The key of ``table`` a client asked for (the first, by default); only those are allowed."""
    if wanted is None:
        return next(iter(table))
    if isinstance(wanted, str) and wanted in table:
        return wanted
    raise bad_request(f"unknown {kind} {shown(wanted)}: this server offers {', '.join(table)}")


def parse_messages(
    body: Mapping[str, Any], limit: int, system: str | None = None
) -> list[ChatMessage]:
    """``messages`` (a chat) or ``prompt`` (one user turn), checked.

    The operator's ``system`` prompt comes first in every conversation; a client's own system
    messages follow it and cannot replace it.
    """
    operator: list[ChatMessage] = [{"role": "system", "content": system}] if system else []
    return operator + _client_messages(body, limit)


def _client_messages(body: Mapping[str, Any], limit: int) -> list[ChatMessage]:
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
    """An ``error`` event: facts and a wording of our own, never the upstream's text."""
    return {
        "stage": stage,
        "type": error_kind(exc),
        "message": client_message(exc, stage),
        "retryable": bool(getattr(exc, "retryable", False)),
    }


def client_message(exc: VoicepipeError, stage: str = "") -> str:
    """What an HTTP client is told about a failure: built from the error's facts only.

    An upstream's own message can echo credentials or name internal hosts, and a provider's
    URL can hold a password; the operator finds all of that in the server's log instead.
    """
    if isinstance(exc, StreamInterrupted):
        return f"the {exc.provider} stream broke off mid-answer; try again"
    if isinstance(exc, ProviderError):
        if exc.status is None:
            return f"the {exc.provider} provider failed or could not be reached; try again"
        if exc.status == 429:
            return f"the {exc.provider} provider is rate limited (HTTP 429); try again shortly"
        if exc.status in (401, 403):
            return f"the {exc.provider} provider refused the server's credentials"
        if exc.status >= 500:
            return f"the {exc.provider} provider failed (HTTP {exc.status}); try again later"
        return f"the {exc.provider} provider refused the request (HTTP {exc.status})"
    where = f"the {stage} stage" if stage and stage != "pipeline" else "the conversation"
    return f"{where} failed ({error_kind(exc)}); the server's log has the details"
