"""The speech-to-text interface every transcriber implements (network or in-process)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["Transcriber"]


class Transcriber(Protocol):
    """Turns one utterance (mono int16 samples) into text; empty if nothing was said."""

    async def prepare(self) -> None:
        """Load the model or open connections before the first utterance (no-op if none)."""
        ...

    async def aclose(self) -> None:
        """Release the model, threads and connections."""
        ...

    async def transcribe(self, samples: npt.NDArray[np.int16], sample_rate: int) -> str:
        """The text spoken in ``samples``, stripped.

        :raises ProviderError: the transcription service failed.
        """
        ...
