"""A fake LLM server speaking the OpenAI, Anthropic and Ollama streaming protocols byte for byte.

One raw ASGI app routes by path: ``POST .../chat/completions`` (OpenAI / llama.cpp SSE),
``POST /v1/messages`` (Anthropic named SSE), ``POST /api/chat`` (Ollama NDJSON). What it does
is set by ``app.behaviour`` (a mutable :class:`Behaviour`); what it received is in
``app.requests``. Usable from benchmarks too: serve it with ``tests.servers.serve``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel

from tests.servers import Receive, Scope, Send, read_body

DEFAULT_TEXT = "Hello there. The sky is blue, mostly because of Rayleigh scattering."


@dataclass
class Behaviour:
    """How the fake server answers; tests change fields before each request."""

    text: str = DEFAULT_TEXT
    tokens: list[str] | None = None  # explicit deltas; default: ``text`` cut before each word
    first_token_delay: float = 0.0  # seconds between headers and the first token
    token_interval: float = 0.0  # seconds between tokens
    fail_times: int = 0  # answer the first N requests with ``fail_status``
    fail_status: int = 429
    retry_after: str | None = None  # retry-after header on those failures
    retry_after_ms: str | None = None
    should_retry: str | None = None  # x-should-retry header on those failures
    error_status: int | None = None  # always fail with this status and the provider's JSON error
    error_message: str = "Incorrect API key provided."
    headers_delay: float = 0.0  # seconds before the response headers are sent
    drop_after: int | None = None  # abort the connection after this many tokens
    hang_after: int | None = None  # stop sending (keep the connection open) after this many
    error_after: int | None = None  # in-band error event after this many tokens
    malformed_after: int | None = None  # a malformed frame after this many tokens
    keepalive: bool = False  # comment keep-alives (SSE) between tokens
    unknown_events: bool = False  # Anthropic: events of a type clients do not know
    reasoning: str | None = None  # reasoning / thinking text streamed before the answer
    line_end: str = "\n"  # "\n", "\r" or "\r\n" (SSE line ends; NDJSON uses "\n" or "\r\n")
    chunk_size: int | None = None  # split every write into pieces of this many bytes
    send_done: bool = True  # OpenAI: end with data: [DONE]; Anthropic: message_stop
    usage_on_finish: bool = False  # OpenAI: usage on the finish chunk (llama.cpp quirk)
    json_instead: bool = False  # answer 200 with one application/json object


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    client: tuple[str, int] | None = None  # the client's address: same port, same connection


@dataclass
class FakeLLM:
    """The ASGI app. ``disconnected`` is set when a client goes away before the response ends."""

    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[RecordedRequest] = field(default_factory=list)
    # time.perf_counter() of every body write (the server runs in this process, so
    # benchmarks can compare it with the client's timeline)
    write_times: list[float] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    requested: threading.Event = field(default_factory=threading.Event)  # a request came in
    completed: int = 0  # responses sent to the end (including deliberate failures)

    def reset(self, behaviour: Behaviour | None = None) -> None:
        """Start over: new behaviour, no recorded requests."""
        self.behaviour = behaviour or Behaviour()
        self.requests.clear()
        self.write_times.clear()
        self.disconnected.clear()
        self.requested.clear()
        self.completed = 0

    def tokens(self) -> list[str]:
        b = self.behaviour
        if b.tokens is not None:
            return list(b.tokens)
        return re.findall(r"\s*\S+", b.text) or [b.text]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body, parsed = await read_body(receive)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.requests.append(
            RecordedRequest(
                method=scope["method"],
                path=scope["path"],
                query=scope["query_string"].decode("latin-1"),
                headers=headers,
                body=body,
                json=parsed,
                client=tuple(scope["client"]) if scope.get("client") else None,
            )
        )
        self.requested.set()
        response = _Response(self, send)
        async with anyio.create_task_group() as tg:

            async def watch_disconnect() -> None:
                message = await receive()
                if message["type"] == "http.disconnect" and not response.finished:
                    self.disconnected.set()
                    tg.cancel_scope.cancel()

            tg.start_soon(watch_disconnect)
            await self._respond(scope, response, parsed if isinstance(parsed, dict) else {})
            tg.cancel_scope.cancel()

    async def _respond(self, scope: Scope, response: _Response, request: dict[str, Any]) -> None:
        b = self.behaviour
        path: str = scope["path"]
        if path.endswith("/chat/completions"):
            protocol = "openai"
        elif path.endswith("/v1/messages"):
            protocol = "anthropic"
        elif path.endswith("/api/chat"):
            protocol = "ollama"
        else:
            await response.error(404, _error_body("openai", f"no route {path}", 404))
            return
        if b.headers_delay:
            await anyio.sleep(b.headers_delay)
        attempt = len(self.requests)
        if attempt <= b.fail_times:
            extra = []
            if b.retry_after is not None:
                extra.append((b"retry-after", b.retry_after.encode()))
            if b.retry_after_ms is not None:
                extra.append((b"retry-after-ms", b.retry_after_ms.encode()))
            if b.should_retry is not None:
                extra.append((b"x-should-retry", b.should_retry.encode()))
            message = f"Rate limit reached (attempt {attempt})"
            await response.error(
                b.fail_status, _error_body(protocol, message, b.fail_status), extra
            )
            return
        if b.error_status is not None:
            body = _error_body(protocol, b.error_message, b.error_status)
            await response.error(b.error_status, body)
            return
        if b.json_instead:
            await response.error(200, _error_body(protocol, b.error_message, 500))
            return
        if protocol == "openai":
            await self._openai(response, request)
        elif protocol == "anthropic":
            await self._anthropic(response, request)
        else:
            await self._ollama(response, request)

    async def _paced(self, response: _Response, index: int) -> bool:
        """Wait before token ``index``; return False when the stream must stop here."""
        b = self.behaviour
        delay = b.first_token_delay if index == 0 else b.token_interval
        if delay:
            await anyio.sleep(delay)
        if b.drop_after is not None and index == b.drop_after:
            response.drop = True
            return False
        if b.hang_after is not None and index == b.hang_after:
            await anyio.sleep_forever()
        return True

    async def _openai(self, response: _Response, request: dict[str, Any]) -> None:
        b = self.behaviour
        le = b.line_end
        model = request.get("model", "gpt-test")
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            obj: dict[str, Any] = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1694268190,
                "model": model,
                "system_fingerprint": "fp_test",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                obj["usage"] = None
            obj.update(extra)
            return _sse(json.dumps(obj, separators=(",", ":")), le)

        await response.start(200, "text/event-stream")
        await response.write(chunk({"role": "assistant", "content": ""}))
        if b.reasoning:
            for piece in re.findall(r"\s*\S+", b.reasoning):
                await response.write(chunk({"reasoning_content": piece, "content": None}))
        tokens = self.tokens()
        for index, token in enumerate(tokens):
            if not await self._paced(response, index):
                return
            if b.keepalive:
                await response.write(f":{le}{le}: ping{le}{le}".encode())
            if b.error_after == index:
                error = {"code": 500, "message": "model crashed mid-answer", "type": "server_error"}
                await response.write(_sse(json.dumps({"error": error}), le))
                await response.end()
                return
            if b.malformed_after == index:
                await response.write(_sse('{"id": "chatcmpl-1", "choices": [', le))
                await response.end()
                return
            await response.write(chunk({"content": token}, obfuscation="x4"))
        usage = {
            "prompt_tokens": 9,
            "completion_tokens": len(tokens),
            "total_tokens": 9 + len(tokens),
        }
        if b.usage_on_finish:
            await response.write(chunk({}, "stop", usage=usage))
        else:
            await response.write(chunk({}, "stop"))
        if include_usage and not b.usage_on_finish:
            body = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1694268190,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            await response.write(_sse(json.dumps(body), le))
        if b.send_done:
            await response.write(_sse("[DONE]", le))
        await response.end()

    async def _anthropic(self, response: _Response, request: dict[str, Any]) -> None:
        b = self.behaviour
        le = b.line_end
        model = request.get("model", "claude-test")

        def event(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}{le}".encode() + _sse(json.dumps(data), le)

        await response.start(200, "text/event-stream; charset=utf-8")
        start = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 25, "output_tokens": 1},
        }
        await response.write(event("message_start", {"type": "message_start", "message": start}))
        block = 0
        if b.reasoning:
            await response.write(
                event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "thinking", "thinking": ""},
                    },
                )
            )
            await response.write(
                event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "thinking_delta", "thinking": b.reasoning},
                    },
                )
            )
            await response.write(
                event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "signature_delta", "signature": "sig"},
                    },
                )
            )
            await response.write(
                event("content_block_stop", {"type": "content_block_stop", "index": 0})
            )
            block = 1
        await response.write(
            event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": block,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        await response.write(event("ping", {"type": "ping"}))
        tokens = self.tokens()
        for index, token in enumerate(tokens):
            if not await self._paced(response, index):
                return
            if b.keepalive:
                await response.write(f": keep-alive{le}{le}".encode())
            if b.unknown_events:
                await response.write(event("future_event", {"type": "future_event", "x": 1}))
            if b.error_after == index:
                error = {"type": "overloaded_error", "message": "Overloaded"}
                await response.write(event("error", {"type": "error", "error": error}))
                await response.end()
                return
            if b.malformed_after == index:
                await response.write(f"event: content_block_delta{le}data: {{oops{le}{le}".encode())
                await response.end()
                return
            delta = {"type": "text_delta", "text": token}
            await response.write(
                event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": block, "delta": delta},
                )
            )
        await response.write(
            event("content_block_stop", {"type": "content_block_stop", "index": block})
        )
        if b.send_done:
            await response.write(
                event(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": len(tokens)},
                    },
                )
            )
            await response.write(event("message_stop", {"type": "message_stop"}))
        await response.end()

    async def _ollama(self, response: _Response, request: dict[str, Any]) -> None:
        b = self.behaviour
        le = "\r\n" if b.line_end == "\r\n" else "\n"
        model = request.get("model", "llama3.2")

        def line(obj: dict[str, Any]) -> bytes:
            return (json.dumps(obj, separators=(",", ":")) + le).encode()

        def message(content: str, **extra: Any) -> dict[str, Any]:
            return {
                "model": model,
                "created_at": "2023-08-04T08:52:19.385406455-07:00",
                "message": {"role": "assistant", "content": content, **extra},
                "done": False,
            }

        await response.start(200, "application/x-ndjson")
        if b.reasoning:
            for piece in re.findall(r"\s*\S+", b.reasoning):
                await response.write(line(message("", thinking=piece)))
        tokens = self.tokens()
        for index, token in enumerate(tokens):
            if not await self._paced(response, index):
                return
            if b.error_after == index:
                await response.write(line({"error": "an error was encountered while running"}))
                await response.end()
                return
            if b.malformed_after == index:
                await response.write(f'{{"model":"{model}","message":{le}'.encode())
                await response.end()
                return
            await response.write(line(message(token)))
        if b.send_done:
            final = message("")
            final.update(
                done=True,
                done_reason="stop",
                total_duration=4883583458,
                load_duration=1334875,
                prompt_eval_count=26,
                prompt_eval_duration=342546000,
                eval_count=len(tokens),
                eval_duration=4535599000,
            )
            await response.write(line(final))
        await response.end()


class _Response:
    """Writes one streamed response, optionally in tiny pieces, or aborts it."""

    def __init__(self, app: FakeLLM, send: Send) -> None:
        self.app = app
        self._send = send
        self.finished = False
        self.drop = False

    async def start(self, status: int, content_type: str, extra: list[Any] | None = None) -> None:
        headers = [(b"content-type", content_type.encode()), (b"cache-control", b"no-cache")]
        await self._send(
            {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
        )

    async def write(self, data: bytes) -> None:
        self.app.write_times.append(time.perf_counter())  # benchmarks compare with the client
        size = self.app.behaviour.chunk_size
        if not size:
            await self._send({"type": "http.response.body", "body": data, "more_body": True})
            return
        for i in range(0, len(data), size):
            piece = data[i : i + size]
            await self._send({"type": "http.response.body", "body": piece, "more_body": True})
            await (
                anyio.lowlevel.checkpoint()
            )  # let the event loop flush each piece as its own segment

    async def end(self) -> None:
        self.finished = True
        self.app.completed += 1
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    async def error(
        self, status: int, body: dict[str, Any], extra: list[Any] | None = None
    ) -> None:
        await self.start(status, "application/json", extra)
        await self.write(json.dumps(body).encode())
        await self.end()


def _sse(data: str, le: str) -> bytes:
    return f"data: {data}{le}{le}".encode()


def _error_body(protocol: str, message: str, status: int) -> dict[str, Any]:
    """The provider's own JSON error shape for ``status``."""
    if protocol == "anthropic":
        kind = {
            401: "authentication_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"}
    if protocol == "ollama":
        return {"error": message}
    kind = {401: "invalid_request_error", 429: "requests"}.get(status, "server_error")
    code = "invalid_api_key" if status == 401 else None
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class _QuietDeliberateDrops(logging.Filter):
    """Hide uvicorn's complaint about the responses this server aborts on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietDeliberateDrops())
