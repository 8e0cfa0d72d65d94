"""Helpers for TTS engine tests: drain an engine's chunks, join their samples."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import numpy as np
import numpy.typing as npt

from voicepipe.audio.chunk import AudioChunk
from voicepipe.transport.settings import RetryPolicy

# Retries that still happen, without the seconds of real backoff.
FAST_RETRY = RetryPolicy(initial_delay=0.01, max_delay=0.05)


async def collect(chunks: AsyncIterator[AudioChunk]) -> list[AudioChunk]:
    """Every chunk left in ``chunks``, within ten seconds."""
    with anyio.fail_after(10):
        return [chunk async for chunk in chunks]


def joined(chunks: list[AudioChunk]) -> npt.NDArray[np.int16]:
    """The samples of ``chunks`` end to end."""
    return np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.int16)
