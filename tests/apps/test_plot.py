"""The timeline plot: a real PNG of a sensible size, the whole run and its first seconds
magnified, in seconds, with a legend; a clear error without matplotlib."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.apps.test_traces import known_run
from voicepipe import timeline as tl
from voicepipe.apps.plot import ZOOM_S, plot_timelines, require_matplotlib, timeline_figure
from voicepipe.errors import ConfigError
from voicepipe.timeline import Event, Timeline


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_one_panel_per_run_in_a_valid_png(tmp_path: Path) -> None:
    failed = known_run()
    failed.timeline.add(Event(tl.ERROR, 100.5, {"stage": "tts", "message": "boom"}))
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    assert plot_timelines([("run", known_run().timeline)], one) == one
    plot_timelines([("a", known_run().timeline), ("b", failed.timeline)], two)
    (w1, h1), (w2, h2) = png_size(one), png_size(two)
    assert 800 <= w1 <= 2000 and 200 <= h1 <= 600
    assert w2 == w1 and h2 > 1.5 * h1  # the second panel adds height, not width
    assert 10_000 < two.stat().st_size < 1_000_000


def test_bad_target_and_empty_input_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write the plot"):
        plot_timelines([("run", known_run().timeline)], tmp_path / "no" / "such" / "x.png")
    with pytest.raises(ConfigError, match="nothing to plot"):
        plot_timelines([], tmp_path / "x.png")


def test_missing_matplotlib_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'voicepipe\[plot\]'"):
        plot_timelines([("run", known_run().timeline)], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def late_run(ttfa: float) -> Timeline:
    """A run whose first audio reaches the sink ``ttfa`` seconds after the request."""
    timeline = Timeline()
    for name, t, data in [
        (tl.LLM_REQUEST, 10.0, {"provider": "local"}),
        (tl.LLM_DELTA, 10.0 + ttfa / 2, {"chars": 4}),
        (tl.TEXT_CHUNK, 10.0 + ttfa * 0.8, {"index": 0}),
        (tl.TTS_REQUEST, 10.0 + ttfa * 0.8, {"index": 0, "chars": 4}),
        (tl.FALLBACK, 10.0 + ttfa * 0.85, {"stage": "tts", "index": 0}),
        (tl.TTS_AUDIO, 10.0 + ttfa * 0.9, {"index": 0, "seconds": 3.0}),
        (tl.SINK_AUDIO, 10.0 + ttfa, {"index": 0, "seconds": 3.0, "queued_s": 0.0}),
        (tl.TTS_DONE, 10.0 + ttfa, {"index": 0, "seconds": 3.0}),
        (tl.RUN_END, 10.0 + ttfa + 3.0, {}),
    ]:
        timeline.add(Event(name, t, data))
    return timeline


def texts(fig: Any) -> list[str]:
    return [t.get_text() for t in fig.legends[0].get_texts()]


def test_each_run_has_a_zoomed_panel_on_its_first_seconds_in_seconds() -> None:
    plt = require_matplotlib()
    fig = timeline_figure([("a", known_run().timeline), ("b", late_run(0.5))])
    try:
        axes = fig.axes
        assert len(axes) == 4  # whole run | first seconds, per run
        full, near = axes[0], axes[1]
        assert near.get_xlim() == (0.0, ZOOM_S)
        assert full.get_xlim()[1] == pytest.approx(3.5 * 1.02)  # the longer run, whole
        assert full.get_xlabel() == "" and axes[2].get_xlabel() == "seconds from the LLM request"
        # The TTFA line sits at 0.382 s in both panels: seconds, not milliseconds.
        for ax in (full, near):
            dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
            assert [line.get_xdata()[0] for line in dashed] == [pytest.approx(0.382)]
        assert near.get_title(loc="left") == "the first 2.0 s, magnified"
    finally:
        plt.close(fig)


def test_a_late_first_audio_widens_the_zoom_to_show_it() -> None:
    plt = require_matplotlib()
    fig = timeline_figure([("slow", late_run(3.0))])
    try:
        assert fig.axes[1].get_xlim() == (0.0, pytest.approx(3.75))
    finally:
        plt.close(fig)


def test_the_legend_names_the_audio_shades_and_the_tts_ticks() -> None:
    plt = require_matplotlib()
    fig = timeline_figure([("a", late_run(0.5))])
    try:
        legend = texts(fig)
        assert "TTS first audio of a chunk" in legend
        assert "TTS request: sent to last audio" in legend
        assert {"audio of chunks 0, 2, 4, …", "audio of chunks 1, 3, 5, …"} <= set(legend)
        assert "fallback: the next engine took over" in legend
        # The fallback is drawn where it happened.
        fallback = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "-."]
        assert [line.get_xdata()[0] for line in fallback] == [pytest.approx(0.425)]
    finally:
        plt.close(fig)


def test_a_zoom_that_is_not_positive_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="positive number of seconds"):
        timeline_figure([("a", late_run(0.5))], zoom_s=0)
