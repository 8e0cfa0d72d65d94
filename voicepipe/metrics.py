"""Time-to-first-audio and the other per-run figures, derived from a Timeline."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from voicepipe import timeline as tl
from voicepipe.timeline import Timeline


@dataclass(frozen=True)
class RunMetrics:
    """Milliseconds from the LLM request to each milestone (None where it never happened)."""

    ttft_ms: float | None  # first text delta from the LLM
    first_chunk_ms: float | None  # first chunk released by the sentence buffer
    first_chunk_text: str | None
    tts_first_audio_ms: float | None  # first audio from the TTS for that chunk
    ttfa_ms: float | None  # first audio handed to the sink
    # Its first sample left the speaker (PortAudio's DAC time): playback only, else None.
    audible_ms: float | None
    output_latency_ms: float | None  # audible_ms - ttfa_ms: pre-roll, buffers, the device
    total_ms: float | None  # end of the run
    audio_ms: float  # audio handed to the sink
    underrun_ms: float  # silence inserted because audio ran dry after it started
    chunks: int  # text chunks released

    def as_dict(self) -> dict[str, float | str | int | None]:
        return asdict(self)

    def breakdown(self) -> dict[str, float] | None:
        """Where TTFA went: model's first token, waiting for words, TTS, and the pipeline itself."""
        if None in (self.ttft_ms, self.first_chunk_ms, self.tts_first_audio_ms, self.ttfa_ms):
            return None
        assert self.ttft_ms is not None and self.first_chunk_ms is not None
        assert self.tts_first_audio_ms is not None and self.ttfa_ms is not None
        return {
            "llm_first_token_ms": self.ttft_ms,
            "waiting_for_words_ms": self.first_chunk_ms - self.ttft_ms,
            "tts_first_audio_ms": self.tts_first_audio_ms - self.first_chunk_ms,
            "pipeline_overhead_ms": self.ttfa_ms - self.tts_first_audio_ms,
        }


def _ms(origin: float, t: float | None) -> float | None:
    return None if t is None else (t - origin) * 1000.0


def run_metrics(timeline: Timeline) -> RunMetrics:
    """Compute a run's metrics; times count from the first ``llm.request`` event."""
    start = timeline.first(tl.LLM_REQUEST)
    if start is None:
        raise ValueError("timeline has no llm.request event")
    origin = start.t

    def at(name: str) -> float | None:
        event = timeline.first(name)
        return None if event is None else _ms(origin, event.t)

    first_chunk = timeline.first(tl.TEXT_CHUNK)
    # The TTS's first audio for the first chunk (index 0), not for whichever chunk came first.
    tts_first = next((e for e in timeline.all(tl.TTS_AUDIO) if e.data.get("index") == 0), None)
    last_event = timeline.first(tl.RUN_END) or timeline.events[-1]
    ttfa, audible = at(tl.SINK_AUDIO), at(tl.AUDIBLE)
    return RunMetrics(
        ttft_ms=at(tl.LLM_DELTA),
        first_chunk_ms=at(tl.TEXT_CHUNK),
        # A stored trace keeps the text only when asked: then there is none to show.
        first_chunk_text=None
        if first_chunk is None or "text" not in first_chunk.data
        else str(first_chunk.data["text"]),
        tts_first_audio_ms=None if tts_first is None else _ms(origin, tts_first.t),
        ttfa_ms=ttfa,
        audible_ms=audible,
        output_latency_ms=None if audible is None or ttfa is None else audible - ttfa,
        total_ms=_ms(origin, last_event.t),
        audio_ms=1000.0 * sum(float(e.data["seconds"]) for e in timeline.all(tl.SINK_AUDIO)),
        underrun_ms=1000.0 * sum(float(e.data["seconds"]) for e in timeline.all(tl.UNDERRUN)),
        chunks=sum(1 for _ in timeline.all(tl.TEXT_CHUNK)),
    )


def real_time_factor(timeline: Timeline) -> float | None:
    """Synthesis time over audio time, summed over chunks (TTS_REQUEST to TTS_DONE); < 1 is faster.

    None when no chunk produced audio.
    """
    started = {e.data.get("index"): e.t for e in timeline.all(tl.TTS_REQUEST)}
    busy = audio = 0.0
    for done in timeline.all(tl.TTS_DONE):
        t0 = started.get(done.data.get("index"))
        seconds = float(done.data.get("seconds", 0.0))
        if t0 is not None and seconds > 0:
            busy += done.t - t0
            audio += seconds
    return busy / audio if audio > 0 else None


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


SUMMARY_FIELDS = (
    "ttft_ms",
    "first_chunk_ms",
    "tts_first_audio_ms",
    "ttfa_ms",
    "audible_ms",
    "output_latency_ms",
    "total_ms",
    "audio_ms",
    "underrun_ms",
)


def stats(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/min/max of ``values`` (all None when there are none)."""
    if values:
        return {
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "min": min(values),
            "max": max(values),
        }
    return {"p50": None, "p95": None, "min": None, "max": None}


def summarize(runs: Iterable[RunMetrics]) -> dict[str, dict[str, float | None]]:
    """p50/p95/min/max of each numeric metric over runs (None where no run had it)."""
    runs = list(runs)
    return {
        name: stats([v for r in runs if (v := getattr(r, name)) is not None])
        for name in SUMMARY_FIELDS
    }
