from __future__ import annotations

import pytest

from voicepipe import timeline as tl
from voicepipe.metrics import percentile, run_metrics, summarize
from voicepipe.timeline import Event, Timeline


def build(events: list[tuple[str, float, dict[str, object]]]) -> Timeline:
    timeline = Timeline()
    for name, t, data in events:
        timeline.add(Event(name, t, dict(data)))
    return timeline


def test_metrics_count_from_the_llm_request() -> None:
    timeline = build(
        [
            (tl.LLM_REQUEST, 10.000, {}),
            (tl.LLM_DELTA, 10.120, {"chars": 3}),
            (tl.LLM_DELTA, 10.150, {"chars": 5}),
            (tl.TEXT_CHUNK, 10.300, {"index": 0, "text": "Hello there,"}),
            (tl.TTS_REQUEST, 10.301, {"index": 0}),
            (tl.TTS_AUDIO, 10.380, {"index": 0, "seconds": 0.5}),
            (tl.SINK_AUDIO, 10.382, {"index": 0, "seconds": 0.5}),
            (tl.TEXT_CHUNK, 10.500, {"index": 1, "text": "friend."}),
            (tl.TTS_AUDIO, 10.600, {"index": 1, "seconds": 0.25}),
            (tl.SINK_AUDIO, 10.601, {"index": 1, "seconds": 0.25}),
            (tl.UNDERRUN, 10.900, {"seconds": 0.04}),
            (tl.RUN_END, 11.000, {}),
        ]
    )
    m = run_metrics(timeline)
    assert m.ttft_ms == pytest.approx(120)
    assert m.first_chunk_ms == pytest.approx(300)
    assert m.first_chunk_text == "Hello there,"
    assert m.tts_first_audio_ms == pytest.approx(380)
    assert m.ttfa_ms == pytest.approx(382)
    assert m.total_ms == pytest.approx(1000)
    assert m.audio_ms == pytest.approx(750)
    assert m.underrun_ms == pytest.approx(40)
    assert m.chunks == 2
    parts = m.breakdown()
    assert parts is not None
    assert parts["llm_first_token_ms"] == pytest.approx(120)
    assert parts["waiting_for_words_ms"] == pytest.approx(180)
    assert parts["tts_first_audio_ms"] == pytest.approx(80)
    assert parts["pipeline_overhead_ms"] == pytest.approx(2)
    assert sum(parts.values()) == pytest.approx(m.ttfa_ms)


def test_tts_first_audio_is_for_the_first_chunk_even_if_another_came_first() -> None:
    timeline = build(
        [
            (tl.LLM_REQUEST, 0.0, {}),
            (tl.TTS_AUDIO, 0.2, {"index": 1, "seconds": 0.1}),
            (tl.TTS_AUDIO, 0.3, {"index": 0, "seconds": 0.1}),
        ]
    )
    assert run_metrics(timeline).tts_first_audio_ms == pytest.approx(300)


def test_missing_milestones_are_none_not_zero() -> None:
    m = run_metrics(build([(tl.LLM_REQUEST, 1.0, {}), (tl.RUN_END, 1.5, {})]))
    assert m.ttft_ms is None and m.ttfa_ms is None and m.breakdown() is None
    assert m.total_ms == pytest.approx(500)
    assert m.audio_ms == 0


def test_a_timeline_without_a_request_is_an_error() -> None:
    with pytest.raises(ValueError):
        run_metrics(build([(tl.RUN_END, 1.0, {})]))


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 50, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0], 95, 2.9),
        ([3, 1, 2], 0, 1),
    ],
)
def test_percentile(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_summary_skips_runs_without_a_value() -> None:
    runs = [
        run_metrics(build([(tl.LLM_REQUEST, 0.0, {}), (tl.SINK_AUDIO, t, {"seconds": 1.0})]))
        for t in (0.1, 0.2, 0.3)
    ]
    runs.append(run_metrics(build([(tl.LLM_REQUEST, 0.0, {})])))
    summary = summarize(runs)
    assert summary["ttfa_ms"] == pytest.approx({"p50": 200, "p95": 290, "min": 100, "max": 300})
    assert summary["ttft_ms"] == {"p50": None, "p95": None, "min": None, "max": None}


def test_audible_counts_from_the_request_and_output_latency_from_ttfa() -> None:
    timeline = build(
        [
            (tl.LLM_REQUEST, 10.000, {}),
            (tl.SINK_AUDIO, 10.382, {"index": 0, "seconds": 0.5}),
            (tl.RUN_END, 11.000, {}),
            # Playback learns it on its own thread and reports it at the end, out of order.
            (tl.AUDIBLE, 10.475, {"device_latency_s": 0.008, "ahead_s": 0.008}),
        ]
    )
    m = run_metrics(timeline)
    assert m.ttfa_ms == pytest.approx(382)
    assert m.audible_ms == pytest.approx(475)
    assert m.output_latency_ms == pytest.approx(93)
    assert m.total_ms == pytest.approx(1000)  # the run's end, not the last event added
    summary = summarize([m])
    assert summary["audible_ms"]["p50"] == pytest.approx(475)
    assert summary["output_latency_ms"]["p50"] == pytest.approx(93)


def test_without_playback_there_is_no_audible_time() -> None:
    m = run_metrics(
        build(
            [
                (tl.LLM_REQUEST, 0.0, {}),
                (tl.SINK_AUDIO, 0.3, {"index": 0, "seconds": 1.0}),
                (tl.RUN_END, 1.0, {}),
            ]
        )
    )
    assert m.ttfa_ms == pytest.approx(300)
    assert m.audible_ms is None and m.output_latency_ms is None
    assert summarize([m])["audible_ms"] == {"p50": None, "p95": None, "min": None, "max": None}
