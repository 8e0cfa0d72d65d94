"""A token source shared by concurrent runs, at most ``limit`` streams at a time."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

import anyio

from voicepipe.lifecycle import Lifecycle
from voicepipe.llm.base import Message, TokenSource


def shareable(source: TokenSource) -> TokenSource:
    """``source`` ready to be shared by concurrent runs: an engine with a fixed number of
    slots (the embedded llama.cpp server has one) is wrapped so requests queue here."""
    from voicepipe.llm.local import LocalChat

    if isinstance(source, LocalChat):
        return LimitedSource(source, source.slots)
    return source


class LimitedSource(Lifecycle):
    """A token source that at most ``limit`` streams use at once; others wait their turn.

    The embedded llama.cpp server has one slot (n_parallel=1): serializing here makes the
    wait visible as time to first token instead of a stall inside the server.
    """

    def __init__(self, source: TokenSource, limit: int = 1) -> None:
        self.source = source
        self.name = source.name
        self._limiter = anyio.CapacityLimiter(limit)

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        async with self._limiter:
            stream = self.source.stream(messages)
            try:
                async for delta in stream:
                    yield delta
            finally:
                await stream.aclose()

    async def prepare(self) -> None:
        await self.source.prepare()

    async def aclose(self) -> None:
        await self.source.aclose()
