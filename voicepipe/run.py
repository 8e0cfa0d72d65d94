"""One prompt's trip through the pipeline: what the stages record and what the caller reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from voicepipe import timeline as tl
from voicepipe.errors import VoicepipeError
from voicepipe.events import PipelineEvent, StageFailed
from voicepipe.metrics import RunMetrics, run_metrics
from voicepipe.timeline import Timeline

__all__ = ["Run"]


@dataclass
class Run:
    """A run's timeline, answer, speech chunks, audio so far, first error, and its events.

    The stages write it; iterate it (inside ``async with pipeline.run(...)``) for its events
    as they happen. A stage that fails records the error here and stops; the others finish
    what they have, and the run raises the first error at the end.
    """

    timeline: Timeline = field(default_factory=Timeline)
    answer: str = ""  # the LLM's text, as written
    chunks: list[str] = field(default_factory=list)  # speech text sent to the TTS
    audio_seconds: float = 0.0
    error: VoicepipeError | None = None
    _events: MemoryObjectReceiveStream[PipelineEvent] | None = None
    _emit: MemoryObjectSendStream[PipelineEvent] | None = None

    @property
    def metrics(self) -> RunMetrics:
        return run_metrics(self.timeline)

    def emit(self, event: PipelineEvent) -> None:
        """Report ``event`` to whoever iterates the run (never blocks; dropped if nobody can)."""
        if self._emit is not None:
            self._emit.send_nowait(event)

    def fail(self, stage: str, error: VoicepipeError) -> None:
        """Record a stage's failure: the first one is what the run raises at the end."""
        if self.error is None:
            self.error = error
        self.timeline.mark(tl.ERROR, stage=stage, message=str(error))
        self.emit(StageFailed(stage, error))

    def __aiter__(self) -> AsyncIterator[PipelineEvent]:
        if self._events is None:
            raise RuntimeError("iterate a Run inside `async with pipeline.run(...)`")
        return self._events.__aiter__()
