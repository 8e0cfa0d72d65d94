"""The timeline plot: a real PNG of a sensible size, and a clear error without matplotlib."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.apps.test_traces import known_run
from voicepipe import timeline as tl
from voicepipe.apps.plot import plot_timelines
from voicepipe.errors import ConfigError
from voicepipe.timeline import Event


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
