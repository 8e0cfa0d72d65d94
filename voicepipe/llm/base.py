"""The token-source interface every LLM provider implements."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Literal, Protocol, TypedDict


class Message(TypedDict):
    """One chat message, in the shape every provider family accepts."""

    role: Literal["system", "user", "assistant"]
    content: str


class TokenSource(Protocol):
    """Streams the assistant's answer to ``messages`` as text deltas, in order.

    Implementations are async generators; the caller closes them (``contextlib.aclosing``)
    so an interrupted stream closes its HTTP response at once.
    """

    name: str

    async def prepare(self) -> None:
        """Load the model or open connections before the first request (no-op if none)."""
        ...

    async def aclose(self) -> None:
        """Release the model, threads and connections."""
        ...

    def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        """Yield the answer's text deltas as the model writes them.

        :raises ProviderError: the request failed before any text (after the retries the
            provider allows); ``status`` and ``retry_after`` say why when the server did.
        :raises StreamInterrupted: the stream broke after some text was yielded (no retry).
        :raises MissingKey: the vendor's host needs a key and none was given.
        """
        ...
