"""What a run reports as it happens: iterate a ``Run`` to get these, in the order they occurred."""

from __future__ import annotations

from dataclasses import dataclass, field

from voicepipe.audio.chunk import AudioChunk
from voicepipe.errors import VoicepipeError

__all__ = ["AudioPlayed", "PipelineEvent", "StageFailed", "TextChunk", "TextDelta"]


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer as the LLM wrote it (for showing text in step with speech)."""

    text: str


@dataclass(frozen=True)
class TextChunk:
    """A chunk of speech text released to the TTS."""

    index: int
    text: str


@dataclass(frozen=True)
class AudioPlayed:
    """``chunk`` (audio for text chunk ``index``) was handed to the sink.

    The event carries the audio itself, so a consumer that forwards audio (an HTTP stream, a
    recorder) needs no second channel and cannot get it out of order. Equality and repr
    leave the samples out.
    """

    index: int
    seconds: float
    chunk: AudioChunk = field(compare=False, repr=False)


@dataclass(frozen=True)
class StageFailed:
    """A stage failed; what it had produced is kept and the run raises ``error`` at the end."""

    stage: str
    error: VoicepipeError


PipelineEvent = TextDelta | TextChunk | AudioPlayed | StageFailed
