"""Ollama's native ``/api/chat`` streaming (newline-delimited JSON)."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from typing import Any

import httpx

from voicepipe.errors import ConfigError, ProviderError
from voicepipe.llm.base import Message
from voicepipe.transport.http import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    ClientOwner,
    RetryPolicy,
    Timeouts,
    drain,
    iter_body,
    json_object,
    open_stream,
    reported_error,
    stream_error,
)

OLLAMA_DEFAULT_URL = "http://localhost:11434"
DEFAULT_PORT = 11434


def ollama_base_url(host: str | None = None) -> str:
    """The server URL for ``host``, else ``$OLLAMA_HOST``, else ``http://localhost:11434``.

    Accepts what Ollama itself accepts in OLLAMA_HOST: ``0.0.0.0:11434``, ``localhost``,
    ``https://example.com/ollama``. A bind-all address is reached through loopback.
    """
    value = (host if host is not None else os.environ.get("OLLAMA_HOST", "")).strip()
    if not value:
        return OLLAMA_DEFAULT_URL
    if "://" not in value:
        value = "http://" + value
    try:
        url = httpx.URL(value)
        port = url.port
    except (httpx.InvalidURL, ValueError) as exc:
        raise ConfigError(
            f"cannot use Ollama host {value!r}: {exc}; set OLLAMA_HOST like localhost:11434"
        ) from exc
    if url.scheme not in ("http", "https"):
        raise ConfigError(f"Ollama host {value!r} needs http:// or https://")
    hostname = url.host or "localhost"
    if hostname in ("0.0.0.0", "::"):
        hostname = "127.0.0.1" if hostname == "0.0.0.0" else "::1"
    if port is None and url.scheme == "http":
        port = DEFAULT_PORT
    url = url.copy_with(host=hostname, port=port)
    return str(url).rstrip("/")


class NDJSONDecoder:
    """Splits a byte stream into JSON values, one per line, however the bytes were chunked.

    Linear in the input: each byte is scanned for a newline once.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Return the complete, non-blank lines (without line ends) that ``data`` finished."""
        start = len(self._buffer)
        self._buffer += data
        lines: list[bytes] = []
        begin = 0
        end = self._buffer.find(b"\n", start)
        while end != -1:
            line = bytes(self._buffer[begin:end]).strip()
            if line:
                lines.append(line)
            begin = end + 1
            end = self._buffer.find(b"\n", begin)
        del self._buffer[:begin]
        return lines

    def flush(self) -> list[bytes]:
        """Return a final line that had no newline, if any."""
        line = bytes(self._buffer).strip()
        self._buffer.clear()
        return [line] if line else []


class OllamaChat(ClientOwner):
    """Streams Ollama's ``/api/chat`` as text deltas; thinking text is not yielded.

    No key: Ollama has no authentication. After a stream, ``last_usage`` holds the final
    metrics (token counts, durations in nanoseconds) and ``finish_reason`` the done reason.
    """

    name = "ollama"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
        max_tokens: int | None = None,
        temperature: float | None = None,
        keep_alive: str | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.base_url = ollama_base_url(base_url)
        ClientOwner.__init__(self, client)  # one client reused across requests
        self.timeouts = timeouts
        self.retry = retry
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.keep_alive = keep_alive
        self.extra_body = dict(extra_body or {})
        self.last_usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None

    def __repr__(self) -> str:
        return f"OllamaChat(model={self.model!r}, base_url={self.base_url!r})"

    def _payload(self, messages: Sequence[Message]) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.max_tokens is not None:
            options["num_predict"] = self.max_tokens
        if self.temperature is not None:
            options["temperature"] = self.temperature
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "stream": True,
        }
        if options:
            payload["options"] = options
        if self.keep_alive is not None:
            payload["keep_alive"] = self.keep_alive
        payload.update(self.extra_body)
        return payload

    @asynccontextmanager
    async def _open(
        self, client: httpx.AsyncClient, messages: Sequence[Message]
    ) -> AsyncIterator[httpx.Response]:
        try:
            async with open_stream(
                client,
                "POST",
                f"{self.base_url}/api/chat",
                provider=self.name,
                json=self._payload(messages),
                timeouts=self.timeouts,
                retry=self.retry,
            ) as response:
                yield response
        except ProviderError as exc:
            if exc.status != 404:
                raise
            raise ProviderError(
                f"{exc} (is the model pulled? try: ollama pull {self.model})",
                provider=self.name,
                status=exc.status,
            ) from exc

    async def _lines(self, response: httpx.Response) -> AsyncGenerator[bytes, None]:
        decoder = NDJSONDecoder()
        body = iter_body(response, provider=self.name, idle_timeout=self.timeouts.idle)
        async with aclosing(body):
            async for data in body:
                for line in decoder.feed(data):
                    yield line
        for line in decoder.flush():
            yield line

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        """Yield the answer's text deltas until the ``done`` line."""
        self.last_usage = None
        self.finish_reason = None
        started = False
        async with (
            self._open(self._http(), messages) as response,
            aclosing(self._lines(response)) as lines,
        ):
            async for line in lines:
                obj = self._parse(line, started)
                message = obj.get("message")
                content = message.get("content") if isinstance(message, dict) else None
                if isinstance(content, str) and content:
                    started = True
                    yield content
                if obj.get("done"):
                    self.finish_reason = str(obj.get("done_reason") or "stop")
                    metrics = {k: v for k, v in obj.items() if k.endswith(("_count", "_duration"))}
                    self.last_usage = metrics or None
                    await drain(lines)
                    return
        raise stream_error(
            f"{self.name} ended the stream before its done line; the answer may be cut short, "
            "try again",
            provider=self.name,
            started=started,
        )

    def _parse(self, line: bytes, started: bool) -> dict[str, Any]:
        """Decode one NDJSON line; raise on a malformed line or an in-band error object."""
        obj = json_object(line)
        if obj is None:
            raise stream_error(
                f"{self.name} sent a malformed line {line[:120]!r}; is this an Ollama server?",
                provider=self.name,
                started=started,
            )
        if obj.get("error"):
            raise reported_error(obj, provider=self.name, started=started)
        return obj
