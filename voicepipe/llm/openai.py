"""OpenAI-compatible chat completions (OpenAI, llama.cpp server, vLLM, Ollama /v1, LM Studio)."""

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

OPENAI_BASE_URL = "https://api.openai.com/v1"
KEY_ENV = "OPENAI_API_KEY"


def _is_openai(base_url: str) -> bool:
    return httpx.URL(base_url).host == "api.openai.com"


class OpenAIChat(ClientOwner):
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
        self._api_key, self._key_env = provider_key(
            api_key, official=official, var=KEY_ENV, provider=self.name
        )
        self.model = model
        self.base_url = base_url.rstrip("/")
        ClientOwner.__init__(self, client)  # one client reused across requests
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
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        started = False
        chunks = iter_sse_json(
            self._http(),
            f"{self.base_url}/chat/completions",
            provider=self.name,
            json=self._payload(messages),
            headers=headers,
            timeouts=self.timeouts,
            retry=self.retry,
            secrets=secrets,
            key_env=self._key_env,
        )
        async with aclosing(chunks):
            async for event, chunk in chunks:
                if event.data.startswith("[DONE]"):
                    await drain(chunks)
                    return
                if chunk is None:
                    raise stream_error(
                        f"{self.name} sent a malformed stream frame "
                        f"{redact(event.data[:120], secrets)!r}; is the server OpenAI-compatible?",
                        provider=self.name,
                        started=started,
                    )
                if chunk.get("error"):
                    raise reported_error(
                        chunk, provider=self.name, started=started, secrets=secrets
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
