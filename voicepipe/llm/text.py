"""A token source that speaks given text, paced like an LLM: for scripts and benchmarks."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Sequence

import anyio
import anyio.lowlevel

from voicepipe.lifecycle import Lifecycle
from voicepipe.llm.base import Message

_TOKENS = re.compile(r"\s*\S+")


class TextSource(Lifecycle):
    """Streams the last user message back word by word, ``tokens_per_second`` at a time.

    ``tokens_per_second=0`` streams as fast as the consumer takes it.
    """

    name = "text"

    def __init__(self, tokens_per_second: float = 50.0, first_token_delay: float = 0.0) -> None:
        self.tokens_per_second = tokens_per_second
        self.first_token_delay = first_token_delay

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        text = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        if self.first_token_delay:
            await anyio.sleep(self.first_token_delay)
        pace = 1.0 / self.tokens_per_second if self.tokens_per_second > 0 else 0.0
        for match in _TOKENS.finditer(text):
            yield match.group()
            if pace:
                await anyio.sleep(pace)
            else:
                await anyio.lowlevel.checkpoint()
        if text[len(text.rstrip()) :]:
            # Keep trailing whitespace too, so the stream is exactly the text.
            yield text[len(text.rstrip()) :]
