"""One run's timeline: every stage stamps named events; metrics are derived from it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

# Event names the pipeline stamps, in the order they first occur in a run.
LLM_REQUEST = "llm.request"  # the request to the LLM is sent: the origin of every metric
LLM_DELTA = "llm.delta"  # a text delta arrived (data: chars)
LLM_DONE = "llm.done"
TEXT_CHUNK = "text.chunk"  # the sentence buffer released a chunk (data: index, text)
TTS_REQUEST = "tts.request"  # synthesis of a chunk started (data: index, chars)
TTS_AUDIO = "tts.audio"  # the engine produced audio (data: index, seconds)
TTS_DONE = "tts.done"  # synthesis of a chunk finished (data: index, seconds)
SINK_AUDIO = "sink.audio"  # audio was handed to the sink (data: index, seconds, queued_s)
UNDERRUN = "sink.underrun"  # playback ran dry (data: seconds of silence inserted)
# The answer's first sample reached the speaker (playback only): ``t`` is PortAudio's DAC time
# for it on our clock (data: ahead_s, how long after the callback that was; device_latency_s,
# the output latency the stream reports, which stands in when the host API gives no DAC time:
# stamped False).
AUDIBLE = "sink.audible"
ERROR = "error"  # a stage failed (data: stage, message)
# A provider in a fallback chain failed and the next took over (data: stage, index, failed,
# next, message); ``index`` is the text chunk the next engine speaks (None for the LLM).
FALLBACK = "fallback"
RUN_END = "run.end"


@dataclass(frozen=True)
class Event:
    """A named moment in a run; ``t`` is ``time.perf_counter()`` seconds."""

    name: str
    t: float
    data: dict[str, Any] = field(default_factory=dict)


class Timeline:
    """Append-only list of events for one run, stamped with ``time.perf_counter()``."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._first: dict[str, Event] = {}

    def mark(self, name: str, **data: Any) -> Event:
        """Stamp ``name`` now, with optional data."""
        event = Event(name, time.perf_counter(), data)
        self.events.append(event)
        self._first.setdefault(name, event)
        return event

    def add(self, event: Event) -> None:
        """Append an event built elsewhere, with the time it was measured at: the sink stage
        adds what playback learnt on PortAudio's thread (underruns, the audible sample) this
        way, and tests build timelines with known times."""
        self.events.append(event)
        first = self._first.get(event.name)
        if first is None or event.t < first.t:
            self._first[event.name] = event

    def first(self, name: str) -> Event | None:
        """The earliest event called ``name``, if any."""
        return self._first.get(name)

    def all(self, name: str) -> Iterator[Event]:
        """Every event called ``name``, in the order stamped."""
        return (e for e in self.events if e.name == name)


# The timeline of the run whose stages the current task serves. Providers stamp it without
# being handed the run (a fallback chain marks its switch): the pipeline binds it in the task
# that starts the stages, which they inherit, so it never outlives the run.
_current: ContextVar[Timeline | None] = ContextVar("voicepipe_timeline", default=None)


def bind(timeline: Timeline) -> None:
    """Make ``timeline`` the current one for this task and the tasks it starts from now on."""
    _current.set(timeline)


def current() -> Timeline | None:
    """The timeline bound for this task's run (None outside a pipeline run)."""
    return _current.get()
