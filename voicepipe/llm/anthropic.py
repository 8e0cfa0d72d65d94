"""Anthropic Messages API streaming (named server-sent events)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import Any

import httpx

from voicepipe.llm.base import Message
from voicepipe.transport.http import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    ClientOwner,
    RetryPolicy,
    Timeouts,
    drain,
    iter_sse_json,
    provider_key,
    redact,
    reported_error,
    stream_error,
)

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
KEY_ENV = "ANTHROPIC_API_KEY"
API_VERSION = "2023-06-01"


class AnthropicChat(ClientOwner):
    """Streams ``/v1/messages`` as text deltas; system messages go to the top-level ``system``.

    On api.anthropic.com the key comes from ``ANTHROPIC_API_KEY`` when ``api_key`` is None;
    other servers (LM Studio, llama.cpp) get no key unless one is given. After a stream,
    ``last_usage`` and ``finish_reason`` (the stop reason) hold what the server reported.
    """

    name = "anthropic"

    def __init__(
        self,
        model: str,
        *,
        base_url: str = ANTHROPIC_BASE_URL,
        api_key: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
        max_tokens: int = 1024,
        temperature: float | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        self._api_key, self._key_env = provider_key(
            api_key,
            official=httpx.URL(base_url).host == "api.anthropic.com",
            var=KEY_ENV,
            provider=self.name,
        )
        self.model = model
        self.base_url = base_url.rstrip("/")
        ClientOwner.__init__(self, client)  # one client reused across requests
        self.timeouts = timeouts
        self.retry = retry
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.extra_body = dict(extra_body or {})
        self.last_usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None

    def __repr__(self) -> str:
        return f"AnthropicChat(model={self.model!r}, base_url={self.base_url!r})"

    def _payload(self, messages: Sequence[Message]) -> dict[str, Any]:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        payload: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": [
                {"role": m["role"], "content": m["content"]}
                for m in messages
                if m["role"] != "system"
            ],
            "stream": True,
        }
        if system:
            payload["system"] = system
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        payload.update(self.extra_body)
        return payload

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        """Yield the text deltas of the answer; pings, thinking and unknown events are skipped."""
        self.last_usage = None
        self.finish_reason = None
        secrets = [self._api_key] if self._api_key else []
        headers = {"anthropic-version": API_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        started = False
        events = iter_sse_json(
            self._http(),
            f"{self.base_url}/v1/messages",
            provider=self.name,
            json=self._payload(messages),
            headers=headers,
            timeouts=self.timeouts,
            retry=self.retry,
            secrets=secrets,
            key_env=self._key_env,
        )
        async with aclosing(events):
            async for event, data in events:
                if data is None:
                    raise stream_error(
                        f"{self.name} sent a malformed {event.event!r} event "
                        f"{redact(event.data[:120], secrets)!r}; is it an Anthropic-style server?",
                        provider=self.name,
                        started=started,
                    )
                # Events are named; the JSON "type" says the same and covers unnamed senders.
                kind = event.event if event.event != "message" else str(data.get("type", ""))
                if kind == "content_block_delta":
                    delta = data.get("delta")
                    if isinstance(delta, dict) and delta.get("type") == "text_delta":
                        text = delta.get("text")
                        if isinstance(text, str) and text:
                            started = True
                            yield text
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
                    await drain(events)
                    return
                elif kind == "error":
                    raise reported_error(data, provider=self.name, started=started, secrets=secrets)
                # ping and event types added after this was written are ignored, as documented.
        if self.finish_reason is None:
            raise stream_error(
                f"{self.name} ended the stream before message_stop; the answer may be cut short, "
                "try again",
                provider=self.name,
                started=started,
            )
