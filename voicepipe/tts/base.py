"""The interface every TTS engine implements."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

from voicepipe.audio.chunk import AudioChunk


class TTSEngine(Protocol):
    """Synthesizes one text chunk into audio chunks, in order.

    ``sample_rate`` is the rate of the chunks it yields (known before the first request).
    ``synthesize`` is an async generator; the caller closes it (``contextlib.aclosing``).
    """

    name: str
    sample_rate: int

    async def prepare(self) -> None:
        """Load the voice or open connections before the first request (no-op if none)."""
        ...

    async def aclose(self) -> None:
        """Release the voice, threads and connections."""
        ...

    def synthesize(self, text: str, text_index: int = 0) -> AsyncGenerator[AudioChunk, None]:
        """Yield ``text`` as audio chunks at ``sample_rate``, stamped with ``text_index``.

        :raises ProviderError: synthesis failed before any audio (after allowed retries).
        :raises StreamInterrupted: the audio broke off after some chunks were yielded.
        :raises MissingKey: the vendor's host needs a key and none was given.
        """
        ...
