"""The voice-input interfaces: speech-to-text (network or in-process) and speech classifiers."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["LISTEN_EXTRA", "LISTEN_RATE", "SpeechClassifier", "Transcriber"]

LISTEN_RATE = 16000  # what speech-to-text and the speech models want
LISTEN_EXTRA = "voicepipe[listen]"  # the optional extra with the speech models


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


class SpeechClassifier(Protocol):
    """Says whether one frame of 16 kHz mono audio holds speech; may keep state between frames.

    ``frame_ms`` is the frame length it needs; ``reset()`` forgets the state (a new stream).
    """

    name: str
    frame_ms: float

    def __call__(self, frame: npt.NDArray[np.int16]) -> bool: ...
    def reset(self) -> None: ...
