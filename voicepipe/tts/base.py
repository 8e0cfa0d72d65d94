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

    def synthesize(self, text: str, text_index: int = 0) -> AsyncGenerator[AudioChunk, None]: ...
