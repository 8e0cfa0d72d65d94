"""Anthropic Messages API streaming (named server-sent events)."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import Any

import httpx

from voicepipe.http import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    RetryPolicy,
    Timeouts,
    client_scope,
    env_key,
    iter_sse,
    open_stream,
    provider_message,
    redact,
    reject_json,
    stream_error,
)
from voicepipe.llm.base import Message

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
KEY_ENV = "ANTHROPIC_API_KEY"
API_VERSION = "2023-06-01"


class AnthropicChat:
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
        self._key_env: str | None = None
        if api_key is None and httpx.URL(base_url).host == "api.anthropic.com":
            api_key = env_key(KEY_ENV, self.name)
            self._key_env = KEY_ENV
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._client = client
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
        headers = {"anthropic-version": API_VERSION, "Accept": "text/event-stream"}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        started = False
        async with (
            client_scope(self._client) as client,
            open_stream(
                client,
                "POST",
                f"{self.base_url}/v1/messages",
                provider=self.name,
                json=self._payload(messages),
                headers=headers,
                timeouts=self.timeouts,
                retry=self.retry,
                secrets=secrets,
                key_env=self._key_env,
            ) as response,
            aclosing(
                iter_sse(response, provider=self.name, idle_timeout=self.timeouts.idle)
            ) as events,
        ):
            await reject_json(response, provider=self.name, secrets=secrets)
            async for event in events:
                if not event.data.strip():
                    continue
                try:
                    data = json.loads(event.data)
                except ValueError:
                    data = None
                if not isinstance(data, dict):
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
                    return
                elif kind == "error":
                    message = provider_message(data) or "unknown error"
                    raise stream_error(
                        f"{self.name} reported an error mid-stream: {redact(message, secrets)}; "
                        "try again",
                        provider=self.name,
                        started=started,
                    )
                # ping and event types added after this was written are ignored, as documented.
        if self.finish_reason is None:
            raise stream_error(
                f"{self.name} ended the stream before message_stop; the answer may be cut short, "
                "try again",
                provider=self.name,
                started=started,
            )
