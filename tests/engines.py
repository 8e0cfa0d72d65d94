"""A small deterministic TTS engine for pipeline tests: a tone per word, with fault knobs.

It implements the real TTSEngine protocol; the embedded Piper engine is exercised by the
end-to-end tests, and network engines by their loopback servers.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncGenerator

import anyio
import numpy as np

from voicepipe.audio.chunk import AudioChunk
from voicepipe.errors import ProviderError
from voicepipe.lifecycle import Lifecycle


def tone_for(text: str, sample_rate: int, seconds_per_word: float) -> np.ndarray:
    """Audio that identifies its text: a tone whose pitch comes from the text's checksum."""
    words = max(1, len(text.split()))
    n = int(sample_rate * seconds_per_word * words)
    freq = 200 + zlib.crc32(text.encode()) % 600
    t = np.arange(n) / sample_rate
    return (np.sin(2 * np.pi * freq * t) * 8000 + 1).astype(np.int16)  # +1: no exact zeros


class ToneTTS(Lifecycle):
    name = "tone"

    def __init__(
        self,
        sample_rate: int = 16000,
        *,
        seconds_per_word: float = 0.05,
        delay: float = 0.0,
        pieces: int = 2,
        fail_at_index: int | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.seconds_per_word = seconds_per_word
        self.delay = delay
        self.pieces = pieces
        self.fail_at_index = fail_at_index
        self.requests: list[str] = []
        self.closed = 0

    async def synthesize(self, text: str, text_index: int = 0) -> AsyncGenerator[AudioChunk, None]:
        self.requests.append(text)
        try:
            if self.fail_at_index is not None and text_index == self.fail_at_index:
                raise ProviderError("tone engine failed on purpose", provider="tone")
            samples = tone_for(text, self.sample_rate, self.seconds_per_word)
            for part in np.array_split(samples, self.pieces):
                if self.delay:
                    await anyio.sleep(self.delay)
                yield AudioChunk(part.astype(np.int16), self.sample_rate, text_index)
        finally:
            self.closed += 1
