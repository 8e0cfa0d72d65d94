"""OpenTelemetry export: each run as one trace, sent over OTLP/HTTP when the environment asks.

Set ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) and install
``voicepipe[otel]``; the exporter reads the rest of the standard variables itself (headers,
timeout, compression, ``OTEL_SERVICE_NAME``). Without the variable nothing is imported and
nothing happens, so the pipeline pays nothing for it.

Spans are built from the run's timeline after the run, with the times it stamped: no tracing
code runs on the hot path. A trace is a ``voicepipe.run`` span (the TTFA figures as
attributes) over ``llm.request``, one ``tts.chunk`` per text chunk and ``sink``; text is
left out unless asked for (``text=True``), as in the trace store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from voicepipe import timeline as tl
from voicepipe.metrics import real_time_factor
from voicepipe.run import Run

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["ENDPOINT_ENVS", "endpoint", "export", "export_sync", "installed"]

ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_INSTRUMENTATION = "voicepipe"
Attribute = str | bool | int | float


def endpoint() -> str | None:
    """Where traces go, from the environment (None: export is off)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    for name in ENDPOINT_ENVS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def installed() -> bool:
    """Whether the ``voicepipe[otel]`` extra (SDK and OTLP/HTTP exporter) can be imported."""
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return False
    return True


async def export(
    runs: Iterable[Run],
    *,
    command: str = "run",
    attributes: Mapping[str, Attribute | None] | None = None,
    text: bool = False,
) -> bool:
    """:func:`export_sync` in a worker thread (the exporter's HTTP client blocks)."""
    if endpoint() is None:
        return False
    runs = list(runs)
    return await anyio.to_thread.run_sync(
        lambda: export_sync(runs, command=command, attributes=attributes, text=text)
    )


def export_sync(
    runs: Iterable[Run],
    *,
    command: str = "run",
    attributes: Mapping[str, Attribute | None] | None = None,
    text: bool = False,
) -> bool:
    """Send each finished run as one trace, in one request; True if the receiver took them.

    ``attributes`` go on each run's root span (``voicepipe.`` is prefixed; None values are
    left out): the specs and settings, never keys. ``text=True`` adds the chunks' text.
    Nothing happens (False) without an endpoint in the environment or without the extra.
    """
    if endpoint() is None or not installed():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    spans = build_spans(runs, command=command, attributes=attributes, text=text)
    if not spans:
        return False
    exporter = OTLPSpanExporter()
    try:
        return exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]


def build_spans(
    runs: Iterable[Run],
    *,
    command: str = "run",
    attributes: Mapping[str, Attribute | None] | None = None,
    text: bool = False,
) -> list[ReadableSpan]:
    """The finished spans of ``runs``, one trace each (needs the extra)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    finished: list[ReadableSpan] = []

    class Collect(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            finished.append(span)

    resource = Resource.create(
        {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "voicepipe"}
    )
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(Collect())
    tracer = provider.get_tracer(_INSTRUMENTATION)
    extra = {f"voicepipe.{k}": v for k, v in (attributes or {}).items() if v is not None}
    # perf_counter() seconds to Unix nanoseconds; the two clocks barely drift over a run.
    offset = time.time_ns() - time.perf_counter_ns()
    for run in runs:
        _run_spans(tracer, run, command, extra, text, lambda t: offset + round(t * 1e9))
    return finished


def _run_spans(
    tracer: Any,
    run: Run,
    command: str,
    extra: dict[str, Attribute],
    text: bool,
    ns: Callable[[float], int],
) -> None:
    from opentelemetry import trace
    from opentelemetry.context import Context
    from opentelemetry.trace import Status, StatusCode

    timeline = run.timeline
    request = timeline.first(tl.LLM_REQUEST)
    if request is None:
        return
    end = (timeline.first(tl.RUN_END) or timeline.events[-1]).t
    m = run.metrics
    figures: dict[str, Attribute | None] = {
        "voicepipe.command": command,
        "voicepipe.llm.provider": request.data.get("provider"),
        **{f"voicepipe.{k}": v for k, v in m.as_dict().items() if k != "first_chunk_text"},
        "voicepipe.rtf": real_time_factor(timeline),
        **extra,
    }
    root = tracer.start_span(
        "voicepipe.run",
        context=Context(),  # a new trace for every run
        start_time=ns(request.t),
        attributes={k: v for k, v in figures.items() if v is not None},
    )
    inside = trace.set_span_in_context(root)

    def child(name: str, start: float, attributes: dict[str, Attribute]) -> Any:
        return tracer.start_span(name, inside, start_time=ns(start), attributes=attributes)

    errors = list(timeline.all(tl.ERROR))
    for e in errors:
        root.add_event("error", _event_data(e.data), timestamp=ns(e.t))
    if errors:
        root.set_status(Status(StatusCode.ERROR, str(errors[0].data.get("message", ""))))

    # The LLM: request to the end of its answer; each delta and chunk as events.
    done = timeline.first(tl.LLM_DONE)
    llm = child(
        "llm.request", request.t, {"voicepipe.llm.provider": request.data.get("provider", "")}
    )
    deltas = list(timeline.all(tl.LLM_DELTA))
    llm.set_attribute("voicepipe.llm.deltas", len(deltas))
    llm.set_attribute("voicepipe.llm.chars", sum(int(e.data.get("chars", 0)) for e in deltas))
    if deltas:
        llm.add_event("first token", timestamp=ns(deltas[0].t))
    for e in timeline.all(tl.TEXT_CHUNK):
        data: dict[str, Attribute] = {"index": int(e.data["index"])}
        if text and "text" in e.data:
            data["text"] = str(e.data["text"])
        llm.add_event("text.chunk", data, timestamp=ns(e.t))
    for e in timeline.all(tl.FALLBACK):
        if e.data.get("stage") == "llm":
            llm.add_event("fallback", _event_data(e.data), timestamp=ns(e.t))
    for e in errors:
        if e.data.get("stage") == "llm":
            llm.set_status(Status(StatusCode.ERROR, str(e.data.get("message", ""))))
    llm.end(end_time=ns(done.t if done is not None else end))

    _tts_spans(timeline, child, ns, end)
    _sink_span(timeline, child, ns, end)
    root.end(end_time=ns(end))


def _tts_spans(timeline: tl.Timeline, child: Any, ns: Callable[[float], int], end: float) -> None:
    """One span per text chunk: its TTS request to its last audio (or the run's end)."""
    from opentelemetry.trace import Status, StatusCode

    done = {e.data.get("index"): e for e in timeline.all(tl.TTS_DONE)}
    failures = [e for e in timeline.all(tl.ERROR) if e.data.get("stage") == "tts"]
    for request in timeline.all(tl.TTS_REQUEST):
        index = request.data.get("index")
        span = child(
            "tts.chunk",
            request.t,
            {"voicepipe.index": int(index or 0), "voicepipe.chars": int(request.data["chars"])},
        )
        audio = [e for e in timeline.all(tl.TTS_AUDIO) if e.data.get("index") == index]
        events = [
            (e.t, "fallback", _event_data(e.data))
            for e in timeline.all(tl.FALLBACK)
            if e.data.get("stage") == "tts" and e.data.get("index") == index
        ]
        if audio:
            span.set_attribute("voicepipe.first_audio_ms", (audio[0].t - request.t) * 1000)
            events.append((audio[0].t, "first audio", {}))
        for t, name, data in sorted(events, key=lambda event: event[0]):
            span.add_event(name, data, timestamp=ns(t))
        span.set_attribute("voicepipe.audio_s", sum(float(e.data["seconds"]) for e in audio))
        finish = done.get(index)
        if finish is None:
            failed = next((e for e in failures if e.t >= request.t), None)
            if failed is not None:
                span.set_status(Status(StatusCode.ERROR, str(failed.data.get("message", ""))))
            span.end(end_time=ns(failed.t if failed is not None else end))
        else:
            span.end(end_time=ns(finish.t))


def _sink_span(timeline: tl.Timeline, child: Any, ns: Callable[[float], int], end: float) -> None:
    """Audio handed to the sink (playback, a file): the first audio to the run's end."""
    audio = list(timeline.all(tl.SINK_AUDIO))
    if not audio:
        return
    underruns = list(timeline.all(tl.UNDERRUN))
    span = child(
        "sink",
        audio[0].t,
        {
            "voicepipe.audio_s": sum(float(e.data["seconds"]) for e in audio),
            "voicepipe.writes": len(audio),
            "voicepipe.underruns": len(underruns),
            "voicepipe.underrun_s": sum(float(e.data["seconds"]) for e in underruns),
        },
    )
    for e in underruns:
        span.add_event("underrun", {"seconds": float(e.data["seconds"])}, timestamp=ns(e.t))
    span.end(end_time=ns(max(end, audio[-1].t)))


def _event_data(data: Mapping[str, Any]) -> dict[str, Attribute]:
    """Timeline data as span-event attributes (None left out, the rest as OTel types)."""
    out: dict[str, Attribute] = {}
    for key, value in data.items():
        if value is None:
            continue
        out[key] = value if isinstance(value, str | bool | int | float) else str(value)
    return out
