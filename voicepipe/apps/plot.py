"""Draw a run's timeline (matplotlib, optional: ``pip install 'voicepipe[plot]'``).

One panel per run, time in ms from the LLM request: LLM tokens, text chunks as released, each
TTS request from send to last byte, audio playing on the sink's playout clock, underruns, and
the TTFA marker.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voicepipe import timeline as tl
from voicepipe.errors import ConfigError
from voicepipe.metrics import run_metrics
from voicepipe.timeline import Timeline

__all__ = ["plot_timelines", "require_matplotlib"]

_ROWS = ("LLM tokens", "text chunks", "TTS", "audio")
_COLOURS = {"llm": "#4c72b0", "chunk": "#dd8452", "tts": "#55a868"}
_AUDIO_SHADES = ("#8172b3", "#b3a7d9")


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend; a ConfigError says what to install."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigError("plotting needs matplotlib: pip install 'voicepipe[plot]'") from exc
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def _draw(ax: Any, timeline: Timeline, title: str) -> None:
    start = timeline.first(tl.LLM_REQUEST)
    origin = start.t if start is not None else timeline.events[0].t

    def ms(t: float) -> float:
        return (t - origin) * 1000.0

    y = {name: len(_ROWS) - 1 - i for i, name in enumerate(_ROWS)}
    deltas = [ms(e.t) for e in timeline.all(tl.LLM_DELTA)]
    if deltas:
        ax.vlines(deltas, y["LLM tokens"] - 0.3, y["LLM tokens"] + 0.3, color=_COLOURS["llm"])
    for e in timeline.all(tl.TEXT_CHUNK):
        ax.plot(ms(e.t), y["text chunks"], marker="v", color=_COLOURS["chunk"], markersize=8)
        ax.annotate(
            str(e.data.get("index", "")),
            (ms(e.t), y["text chunks"] + 0.15),
            ha="center",
            fontsize=7,
        )
    sent = {e.data.get("index"): e.t for e in timeline.all(tl.TTS_REQUEST)}
    for done in timeline.all(tl.TTS_DONE):
        t0 = sent.get(done.data.get("index"))
        if t0 is not None:
            ax.broken_barh(
                [(ms(t0), max(ms(done.t) - ms(t0), 0.5))],
                (y["TTS"] - 0.3, 0.6),
                facecolor=_COLOURS["tts"],
                edgecolor="white",
            )
    firsts: dict[Any, float] = {}
    for e in timeline.all(tl.TTS_AUDIO):
        firsts.setdefault(e.data.get("index"), ms(e.t))
    if firsts:
        ax.plot(list(firsts.values()), [y["TTS"]] * len(firsts), "k|", markersize=12)
    # Audio plays back to back: a chunk starts when it arrives or when the one before ends.
    # Shades alternate with the text chunk the audio belongs to.
    play_end: float | None = None
    spans: list[tuple[float, float]] = []
    shades: list[str] = []
    for e in timeline.all(tl.SINK_AUDIO):
        begin = ms(e.t) if play_end is None else max(ms(e.t), play_end)
        length = float(e.data.get("seconds", 0.0)) * 1000.0
        spans.append((begin, length))
        shades.append(_AUDIO_SHADES[int(e.data.get("index", 0)) % 2])
        play_end = begin + length
    if spans:
        ax.broken_barh(spans, (y["audio"] - 0.3, 0.6), facecolors=shades)
    gaps = [(ms(e.t), float(e.data["seconds"]) * 1000.0) for e in timeline.all(tl.UNDERRUN)]
    if gaps:
        ax.broken_barh(gaps, (y["audio"] - 0.4, 0.8), facecolor="#c44e52", label="underrun")
    for e in timeline.all(tl.ERROR):
        ax.axvline(ms(e.t), color="#c44e52", linestyle=":", label=f"error ({e.data.get('stage')})")
    m = run_metrics(timeline) if start is not None else None
    if m is not None and m.ttfa_ms is not None:
        ax.axvline(m.ttfa_ms, color="black", linestyle="--", label=f"TTFA {m.ttfa_ms:.0f} ms")
    ax.set_yticks(list(y.values()), list(y))
    ax.set_ylim(-0.7, len(_ROWS) - 0.3)
    ax.set_xlim(left=0)
    ax.set_title(title, fontsize=9, loc="left")
    ax.grid(axis="x", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=7)


def plot_timelines(runs: Sequence[tuple[str, Timeline]], path: str | Path) -> Path:
    """Write one panel per ``(title, timeline)`` to ``path`` (PNG, SVG or PDF by extension)."""
    if not runs:
        raise ConfigError("nothing to plot: no runs")
    plt = require_matplotlib()
    target = Path(path)
    fig, axes = plt.subplots(
        len(runs), 1, figsize=(11, 0.4 + 2.2 * len(runs)), squeeze=False, sharex=True
    )
    try:
        for ax, (title, timeline) in zip(axes[:, 0], runs, strict=True):
            if timeline.events:
                _draw(ax, timeline, title)
        axes[-1, 0].set_xlabel("ms from the LLM request")
        fig.tight_layout()
        try:
            fig.savefig(target, dpi=110)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot write the plot {target}: {exc}") from exc
    finally:
        plt.close(fig)
    return target
