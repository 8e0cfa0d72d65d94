"""OpenAI-compatible chat completions (OpenAI, llama.cpp server, vLLM, Ollama /v1, LM Studio)."""

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

OPENAI_BASE_URL = "https://api.openai.com/v1"
KEY_ENV = "OPENAI_API_KEY"


def _is_openai(base_url: str) -> bool:
    return httpx.URL(base_url).host == "api.openai.com"


class OpenAIChat:
    """Streams ``/chat/completions`` as text deltas over server-sent events.

    On api.openai.com the key comes from ``OPENAI_API_KEY`` when ``api_key`` is None; other
    servers get no Authorization header unless ``api_key`` is given, so the OpenAI key never
    leaks to a third party. After a stream, ``last_usage`` and ``finish_reason`` hold what the
    server reported (None if it did not).
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra_body: dict[str, Any] | None = None,
        include_usage: bool | None = None,
    ) -> None:
        official = _is_openai(base_url)
        self._key_env: str | None = None
        if api_key is None and official:
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
        # Not every compatible server accepts stream_options: ask only where it is known to work.
        self.include_usage = official if include_usage is None else include_usage
        self._official = official
        self.last_usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None

    def __repr__(self) -> str:
        return f"OpenAIChat(model={self.model!r}, base_url={self.base_url!r})"

    def _payload(self, messages: Sequence[Message]) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "stream": True,
        }
        if self.include_usage:
            payload["stream_options"] = {"include_usage": True}
        if self.max_tokens is not None:
            # OpenAI deprecated max_tokens; compatible servers mostly know only max_tokens.
            field = "max_completion_tokens" if self._official else "max_tokens"
            payload[field] = self.max_tokens
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        payload.update(self.extra_body)
        return payload

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        """Yield the answer's text deltas; reasoning text, role and usage chunks are not yielded."""
        self.last_usage = None
        self.finish_reason = None
        secrets = [self._api_key] if self._api_key else []
        headers = {"Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        started = False
        async with (
            client_scope(self._client) as client,
            open_stream(
                client,
                "POST",
                f"{self.base_url}/chat/completions",
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
                data = event.data
                if not data.strip():
                    continue
                if data.startswith("[DONE]"):
                    return
                try:
                    chunk = json.loads(data)
                except ValueError:
                    chunk = None
                if not isinstance(chunk, dict):
                    raise stream_error(
                        f"{self.name} sent a malformed stream frame "
                        f"{redact(data[:120], secrets)!r}; is the server OpenAI-compatible?",
                        provider=self.name,
                        started=started,
                    )
                if chunk.get("error"):
                    message = provider_message(chunk) or "unknown error"
                    raise stream_error(
                        f"{self.name} reported an error mid-stream: {redact(message, secrets)}; "
                        "try again",
                        provider=self.name,
                        started=started,
                    )
                usage = chunk.get("usage")
                if isinstance(usage, dict):
                    self.last_usage = usage
                for choice in chunk.get("choices") or ():
                    if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                        continue
                    delta = choice.get("delta")
                    content = delta.get("content") if isinstance(delta, dict) else None
                    if isinstance(content, str) and content:
                        started = True
                        yield content
                    if choice.get("finish_reason"):
                        self.finish_reason = str(choice["finish_reason"])
        # EOF without [DONE] (some llama.cpp builds) still ends the answer normally.
