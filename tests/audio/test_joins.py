"""Chunk joins: smooth audio passes unchanged; abrupt starts, ends and jumps are faded."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.joins import ABRUPT_LEVEL, ChunkJoiner, SinkFeed, fade

RATE = 16000
FADE = 64  # 4 ms at 16 kHz


def sine(n: int, freq: float = 220.0, amp: float = 8000.0, phase: float = 0.0) -> np.ndarray:
    t = np.arange(n) / RATE
    return np.round(np.sin(2 * np.pi * freq * t + phase) * amp).astype(np.int16)


def join(pieces: list[tuple[np.ndarray, int]], **kw: float) -> tuple[np.ndarray, ChunkJoiner]:
    joiner = ChunkJoiner(RATE, **kw)
    out = [joiner.feed(p, i) for p, i in pieces]
    out.append(joiner.flush())
    return np.concatenate(out), joiner


def max_step(x: np.ndarray) -> int:
    return int(np.abs(np.diff(x.astype(np.int32))).max())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=8))
def test_smooth_audio_passes_unchanged_however_it_is_cut(cuts: list[int]) -> None:
    # A whole number of periods: starts and ends at zero, continuous at every cut.
    signal = sine(RATE // 2, freq=200.0)
    bounds = np.cumsum([0, *cuts])
    bounds = bounds[bounds < len(signal)]
    pieces = [(p, 0) for p in np.split(signal, bounds[1:]) if len(p)]
    out, joiner = join(pieces)
    np.testing.assert_array_equal(out, signal)
    assert joiner.fades == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2000), st.integers(-20000, 20000), st.integers(0, 3)),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([0.0, 10.0]),
)
def test_nothing_is_lost_or_added_but_the_pauses(
    specs: list[tuple[int, int, int]], pause_ms: float
) -> None:
    pieces = [(np.full(n, level, np.int16), index) for n, level, index in specs]
    out, joiner = join(pieces, pause_ms=pause_ms)
    indexes = [i for n, _, i in specs if n]
    boundaries = sum(1 for a, b in itertools.pairwise(indexes) if a != b)
    assert len(out) == sum(n for n, _, _ in specs) + boundaries * joiner.pause_frames


def test_an_abrupt_start_and_end_are_faded() -> None:
    out, joiner = join([(np.full(1000, 12000, np.int16), 0)])
    assert out[0] == 0 and out[-1] == 0
    assert max_step(out) < 12000 / FADE * 2  # a ramp, not a step
    np.testing.assert_array_equal(out[FADE:-FADE], 12000)  # the middle is untouched
    assert joiner.fades == 2


def test_a_jump_inside_a_text_chunk_is_smoothed() -> None:
    a = sine(800, phase=0.0)
    b = sine(800, phase=np.pi / 2 + 0.3)  # resumes at another phase: a jump of ~8000
    raw = np.concatenate([a, b])
    assert max_step(raw[795:805]) > 5000
    out, joiner = join([(a, 0), (b, 0)])
    assert len(out) == len(raw)
    assert max_step(out[700:900]) < 1500
    assert joiner.fades == 2  # the jump, and b ends mid-wave


def test_pause_between_text_chunks_is_silence_at_the_boundary() -> None:
    a, b = sine(800), sine(800)  # both start at 0 and end near it: no fade needed
    out, _ = join([(a, 0), (b, 1)], pause_ms=50)
    pause = 800  # 50 ms at 16 kHz
    np.testing.assert_array_equal(out[:800], a)
    np.testing.assert_array_equal(out[800 : 800 + pause], 0)
    np.testing.assert_array_equal(out[800 + pause :], b)


def test_a_new_text_chunk_that_starts_mid_wave_is_faded_in() -> None:
    a = sine(800)
    b = np.full(500, -9000, np.int16)
    out, joiner = join([(a, 0), (b, 1)])
    assert abs(int(out[800])) < ABRUPT_LEVEL
    assert joiner.fades == 2  # fade in at the join, fade out at the end


@pytest.mark.parametrize("out_", [True, False])
def test_fade_reaches_zero(out_: bool) -> None:
    ramp = fade(np.full(10, 1000, np.int16), out=out_)
    assert (ramp[-1] if out_ else ramp[0]) == 0
    assert (ramp[0] if out_ else ramp[-1]) == 1000


def test_sink_feed_resamples_once_and_passes_exact_audio_when_not_smoothing() -> None:
    feed = SinkFeed(smooth=False)
    chunks = [AudioChunk(np.full(n, 15000, np.int16), RATE, i) for i, n in enumerate([5, 300])]
    out = np.concatenate([feed.feed(c) for c in chunks] + [feed.flush()])
    np.testing.assert_array_equal(out, np.full(305, 15000))
    feed = SinkFeed(48000)
    signal = sine(RATE)
    out = np.concatenate([feed.feed(AudioChunk(p, RATE)) for p in np.array_split(signal, 7)])
    out = np.concatenate([out, feed.flush()])
    assert abs(len(out) - 3 * RATE) <= 2
    assert max_step(out) < 400  # seamless: no edge at the 7 piece joins
