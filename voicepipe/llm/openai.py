"""OpenAI-compatible chat completions (OpenAI, llama.cpp server, vLLM, Ollama /v1, LM Studio)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any, Unpack

from voicepipe.llm.base import Message
from voicepipe.transport.chat import ChatOptions, HTTPChat
from voicepipe.transport.keys import OPENAI_BASE_URL, OPENAI_KEY, openai_endpoint
from voicepipe.transport.sse import SSEFrame
from voicepipe.transport.stream import StreamProgress

__all__ = ["OPENAI_BASE_URL", "OpenAIChat"]


class OpenAIChat(HTTPChat[SSEFrame]):
    """Streams ``/chat/completions`` as text deltas over server-sent events.

    On api.openai.com the key comes from ``OPENAI_API_KEY`` when ``api_key`` is None; other
    servers get no Authorization header unless ``api_key`` is given, so the OpenAI key never
    leaks to a third party. Without ``base_url``, ``$OPENAI_BASE_URL`` is honoured with
    ``$OPENAI_API_KEY``, as by the official SDK: the user paired the two. Reasoning text, role
    and usage chunks are not yielded; after a stream, ``last_usage`` and ``finish_reason`` hold
    what the server reported.
    """

    name = "openai"
    key = OPENAI_KEY

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        max_tokens: int | None = None,
        include_usage: bool | None = None,
        **options: Unpack[ChatOptions],
    ) -> None:
        base_url, api_key = openai_endpoint(base_url, api_key)
        super().__init__(model, base_url, api_key=api_key, max_tokens=max_tokens, **options)
        # Not every compatible server accepts stream_options: ask only where it is known to work.
        self.include_usage = self.official if include_usage is None else include_usage

    def _payload(self, messages: Sequence[Message]) -> dict[str, Any]:
        # OpenAI deprecated max_tokens; compatible servers mostly know only max_tokens.
        limit = "max_completion_tokens" if self.official else "max_tokens"
        return self._request_body(
            messages,
            stream_options={"include_usage": True} if self.include_usage else None,
            temperature=self.temperature,
            **{limit: self.max_tokens},
        )

    def _frames(self, messages: Sequence[Message]) -> AsyncGenerator[SSEFrame, None]:
        return self._events("/chat/completions", self._payload(messages))

    def _read(self, frame: SSEFrame, progress: StreamProgress) -> str | None:
        """The first choice's content delta; ``[DONE]`` ends the answer (so may the body's end,
        which some llama.cpp builds send instead)."""
        event, data = frame
        if event.data.startswith("[DONE]"):
            progress.ended = True
            return None
        chunk = progress.json_frame(
            data, event.data, kind="stream frame", check="is the server OpenAI-compatible?"
        )
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.last_usage = usage
        text = ""
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str):
                text += content
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        return text
