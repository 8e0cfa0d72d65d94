"""Anthropic Messages API streaming (named server-sent events)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any, Unpack

from voicepipe.llm.base import Message
from voicepipe.transport.chat import ChatOptions, HTTPChat
from voicepipe.transport.keys import VendorKey
from voicepipe.transport.sse import SSEFrame
from voicepipe.transport.stream import StreamProgress

__all__ = ["ANTHROPIC_BASE_URL", "AnthropicChat"]

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"


class AnthropicChat(HTTPChat[SSEFrame]):
    """Streams ``/v1/messages`` as text deltas; system messages go to the top-level ``system``.

    On api.anthropic.com the key comes from ``ANTHROPIC_API_KEY`` when ``api_key`` is None;
    other servers (LM Studio, llama.cpp) get no key unless one is given. Pings, thinking and
    unknown events are skipped; after a stream, ``last_usage`` and ``finish_reason`` (the stop
    reason) hold what the server reported.
    """

    name = "anthropic"
    key = VendorKey("ANTHROPIC_API_KEY", "api.anthropic.com")
    key_header = "x-api-key"
    end_marker = "message_stop"

    def __init__(
        self,
        model: str,
        *,
        base_url: str = ANTHROPIC_BASE_URL,
        api_key: str | None = None,
        max_tokens: int = 1024,
        **options: Unpack[ChatOptions],
    ) -> None:
        super().__init__(model, base_url, api_key=api_key, max_tokens=max_tokens, **options)

    def _payload(self, messages: Sequence[Message]) -> dict[str, Any]:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        return self._request_body(
            (m for m in messages if m["role"] != "system"),
            max_tokens=self.max_tokens,
            system=system or None,
            temperature=self.temperature,
        )

    def _frames(self, messages: Sequence[Message]) -> AsyncGenerator[SSEFrame, None]:
        headers = {"anthropic-version": API_VERSION}
        return self._events("/v1/messages", self._payload(messages), headers)

    def _read(self, frame: SSEFrame, progress: StreamProgress) -> str | None:
        """The text of a ``content_block_delta``; usage and the stop reason from the message
        events; ``message_stop`` ends the answer."""
        event, parsed = frame
        data = progress.json_frame(
            parsed,
            event.data,
            kind=f"{event.event!r} event",
            check="is it an Anthropic-style server?",
        )
        # Events are named; the JSON "type" says the same and covers unnamed senders.
        kind = event.event if event.event != "message" else str(data.get("type", ""))
        if kind == "content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                text = delta.get("text")
                return text if isinstance(text, str) else None
        elif kind == "message_start":
            message = data.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            if isinstance(usage, dict):
                self.last_usage = dict(usage)
        elif kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self.finish_reason = str(delta["stop_reason"])
            usage = data.get("usage")
            if isinstance(usage, dict):
                # message_delta usage is cumulative: it replaces the start's counts.
                self.last_usage = {**(self.last_usage or {}), **usage}
        elif kind == "message_stop":
            progress.ended = True
        elif kind == "error":
            raise progress.reported(data)
        # ping and event types added after this was written are ignored, as documented.
        return None
