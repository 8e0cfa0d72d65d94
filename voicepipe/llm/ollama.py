"""Ollama's native ``/api/chat`` streaming (newline-delimited JSON)."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import Any, Unpack

import httpx

from voicepipe.errors import ConfigError, ProviderError
from voicepipe.llm.base import Message
from voicepipe.transport.chat import ChatOptions, HTTPChat
from voicepipe.transport.stream import StreamProgress
from voicepipe.transport.wording import json_object

__all__ = ["NDJSONDecoder", "OllamaChat", "ollama_base_url"]

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


class OllamaChat(HTTPChat[bytes]):
    """Streams Ollama's ``/api/chat`` as text deltas; thinking text is not yielded.

    Ollama itself has no authentication; ``api_key`` (sent as a bearer token) is for a proxy
    in front of it that wants one. After a stream, ``last_usage`` holds the final
    metrics (token counts, durations in nanoseconds) and ``finish_reason`` the done reason.
    """

    name = "ollama"
    end_marker = "its done line"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        max_tokens: int | None = None,
        keep_alive: str | None = None,
        **options: Unpack[ChatOptions],
    ) -> None:
        super().__init__(
            model, ollama_base_url(base_url), api_key=api_key, max_tokens=max_tokens, **options
        )
        self.keep_alive = keep_alive

    def _payload(self, messages: Sequence[Message]) -> dict[str, Any]:
        sampling = {"num_predict": self.max_tokens, "temperature": self.temperature}
        options = {name: value for name, value in sampling.items() if value is not None}
        return self._request_body(messages, options=options or None, keep_alive=self.keep_alive)

    async def _frames(self, messages: Sequence[Message]) -> AsyncGenerator[bytes, None]:
        """The answer's NDJSON lines; a 404 (an unknown model) says how to pull the model."""
        decoder = NDJSONDecoder()
        try:
            async with self._post("/api/chat", json=self._payload(messages)) as response:
                body = self._body(response)
                async with aclosing(body):
                    async for data in body:
                        for line in decoder.feed(data):
                            yield line
        except ProviderError as exc:
            if exc.status != 404:
                raise
            raise ProviderError(
                f"{exc} (is the model pulled? try: ollama pull {self.model})",
                provider=self.name,
                status=exc.status,
            ) from exc
        for line in decoder.flush():
            yield line

    def _read(self, frame: bytes, progress: StreamProgress) -> str | None:
        """The message content of one NDJSON line; the ``done`` line ends the answer."""
        obj = progress.json_frame(
            json_object(frame), frame, kind="line", check="is this an Ollama server?"
        )
        if obj.get("done"):
            self.finish_reason = str(obj.get("done_reason") or "stop")
            metrics = {k: v for k, v in obj.items() if k.endswith(("_count", "_duration"))}
            self.last_usage = metrics or None
            progress.ended = True
        message = obj.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        return content if isinstance(content, str) else None
