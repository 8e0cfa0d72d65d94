"""Draw a run's timeline (matplotlib, optional: ``pip install 'voicepipe[plot]'``).

One row per run, time in seconds from the LLM request: the whole run on the left, and on the
right the first seconds magnified (``zoom_s``, 2 s, or a little past TTFA if that is later),
where time to first audio is decided and a whole-run axis squeezes it into a sliver. Rows:
LLM tokens, text chunks as released, each TTS request from send to last audio (a tick at its
first audio), audio playing on the sink's playout clock (shaded by text chunk), underruns,
fallbacks, errors and the TTFA marker; one legend below says which mark is which.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voicepipe import timeline as tl
from voicepipe.errors import ConfigError
from voicepipe.metrics import run_metrics
from voicepipe.timeline import Timeline

__all__ = ["ZOOM_S", "plot_timelines", "require_matplotlib", "timeline_figure"]

ZOOM_S = 2.0  # seconds the zoomed panel shows, at least
_ROWS = ("LLM tokens", "text chunks", "TTS", "audio")
_COLOURS = {
    "llm": "#4c72b0",
    "chunk": "#dd8452",
    "tts": "#55a868",
    "underrun": "#c44e52",
    "fallback": "#da8bc3",
}
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


def zoom_end(timeline: Timeline, zoom_s: float = ZOOM_S) -> float:
    """Seconds the zoomed panel shows: ``zoom_s``, or past a later TTFA so it is in view."""
    start = timeline.first(tl.LLM_REQUEST)
    ttfa = run_metrics(timeline).ttfa_ms if start is not None else None
    return max(zoom_s, 1.25 * ttfa / 1000.0) if ttfa is not None else zoom_s


def _draw(ax: Any, timeline: Timeline, *, annotate: bool) -> None:
    start = timeline.first(tl.LLM_REQUEST)
    origin = start.t if start is not None else timeline.events[0].t

    def s(t: float) -> float:
        return t - origin

    y = {name: len(_ROWS) - 1 - i for i, name in enumerate(_ROWS)}
    deltas = [s(e.t) for e in timeline.all(tl.LLM_DELTA)]
    if deltas:
        ax.vlines(deltas, y["LLM tokens"] - 0.3, y["LLM tokens"] + 0.3, color=_COLOURS["llm"])
    for e in timeline.all(tl.TEXT_CHUNK):
        ax.plot(s(e.t), y["text chunks"], marker="v", color=_COLOURS["chunk"], markersize=8)
        if annotate:
            ax.annotate(
                str(e.data.get("index", "")),
                (s(e.t), y["text chunks"] + 0.15),
                ha="center",
                fontsize=7,
                annotation_clip=True,
            )
    sent = {e.data.get("index"): e.t for e in timeline.all(tl.TTS_REQUEST)}
    for done in timeline.all(tl.TTS_DONE):
        t0 = sent.get(done.data.get("index"))
        if t0 is not None:
            ax.broken_barh(
                [(s(t0), max(done.t - t0, 0.0005))],
                (y["TTS"] - 0.3, 0.6),
                facecolor=_COLOURS["tts"],
                edgecolor="white",
            )
    firsts: dict[Any, float] = {}
    for e in timeline.all(tl.TTS_AUDIO):
        firsts.setdefault(e.data.get("index"), s(e.t))
    if firsts:
        ax.plot(list(firsts.values()), [y["TTS"]] * len(firsts), "k|", markersize=12)
    # Audio plays back to back: a chunk starts when it arrives or when the one before ends.
    # Shades alternate with the text chunk the audio belongs to.
    play_end: float | None = None
    spans: list[tuple[float, float]] = []
    shades: list[str] = []
    for e in timeline.all(tl.SINK_AUDIO):
        begin = s(e.t) if play_end is None else max(s(e.t), play_end)
        length = float(e.data.get("seconds", 0.0))
        spans.append((begin, length))
        shades.append(_AUDIO_SHADES[int(e.data.get("index", 0)) % 2])
        play_end = begin + length
    if spans:
        ax.broken_barh(spans, (y["audio"] - 0.3, 0.6), facecolors=shades)
    gaps = [(s(e.t), float(e.data["seconds"])) for e in timeline.all(tl.UNDERRUN)]
    if gaps:
        ax.broken_barh(gaps, (y["audio"] - 0.4, 0.8), facecolor=_COLOURS["underrun"])
    for e in timeline.all(tl.FALLBACK):
        ax.axvline(s(e.t), color=_COLOURS["fallback"], linestyle="-.")
    for e in timeline.all(tl.ERROR):
        ax.axvline(s(e.t), color=_COLOURS["underrun"], linestyle=":")
    m = run_metrics(timeline) if start is not None else None
    if m is not None and m.ttfa_ms is not None:
        ax.axvline(m.ttfa_ms / 1000.0, color="black", linestyle="--")
        if annotate:
            ax.annotate(
                f"TTFA {m.ttfa_ms / 1000.0:.2f} s",
                (m.ttfa_ms / 1000.0, len(_ROWS) - 0.45),
                xytext=(3, 0),
                textcoords="offset points",
                fontsize=7,
                va="center",
            )
    ax.set_yticks(list(y.values()), list(y))
    ax.set_ylim(-0.7, len(_ROWS) - 0.3)
    ax.grid(axis="x", alpha=0.3)


def _legend(fig: Any) -> None:
    """One legend for the figure: every mark the panels use, whether or not a run has it."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Line2D([], [], color=_COLOURS["llm"], marker="|", linestyle="", markersize=10),
        Line2D([], [], color=_COLOURS["chunk"], marker="v", linestyle=""),
        Patch(facecolor=_COLOURS["tts"]),
        Line2D([], [], color="black", marker="|", linestyle="", markersize=10),
        Patch(facecolor=_AUDIO_SHADES[0]),
        Patch(facecolor=_AUDIO_SHADES[1]),
        Patch(facecolor=_COLOURS["underrun"]),
        Line2D([], [], color="black", linestyle="--"),
        Line2D([], [], color=_COLOURS["fallback"], linestyle="-."),
        Line2D([], [], color=_COLOURS["underrun"], linestyle=":"),
    ]
    labels = [
        "LLM token",
        "text chunk released (its number)",
        "TTS request: sent to last audio",
        "TTS first audio of a chunk",
        "audio of chunks 0, 2, 4, …",
        "audio of chunks 1, 3, 5, …",
        "underrun (silence)",
        "TTFA: first audio to the sink",
        "fallback: the next engine took over",
        "error",
    ]
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=7, frameon=False)


def timeline_figure(runs: Sequence[tuple[str, Timeline]], *, zoom_s: float = ZOOM_S) -> Any:
    """A matplotlib figure: a row per ``(title, timeline)``, the whole run and its first
    ``zoom_s`` seconds side by side. The caller closes it (``plt.close(fig)``)."""
    if not runs:
        raise ConfigError("nothing to plot: no runs")
    if not zoom_s > 0:
        raise ConfigError(f"the zoom must be a positive number of seconds (got {zoom_s})")
    plt = require_matplotlib()
    legend_in = 0.75  # inches below the panels for the legend
    height = 0.5 + 2.2 * len(runs) + legend_in
    fig, axes = plt.subplots(
        len(runs),
        2,
        figsize=(13, height),
        squeeze=False,
        sharex="col",
        gridspec_kw={"width_ratios": [2.2, 1]},
    )
    whole_end, zoom = 0.0, zoom_s
    for (full, near), (title, timeline) in zip(axes, runs, strict=True):
        if not timeline.events:
            continue
        _draw(full, timeline, annotate=True)
        _draw(near, timeline, annotate=True)
        near.set_yticklabels([])
        full.set_title(title, fontsize=9, loc="left")
        start = timeline.first(tl.LLM_REQUEST)
        origin = start.t if start is not None else timeline.events[0].t
        whole_end = max(whole_end, max(e.t for e in timeline.events) - origin)
        zoom = max(zoom, zoom_end(timeline, zoom_s))
    for (full, near), _ in zip(axes, runs, strict=True):
        full.set_xlim(0, max(whole_end, zoom) * 1.02)
        near.set_xlim(0, zoom)
    axes[0, 1].set_title(f"the first {zoom:.1f} s, magnified", fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("seconds from the LLM request")
    axes[-1, 1].set_xlabel("seconds from the LLM request")
    _legend(fig)
    fig.tight_layout(rect=(0, legend_in / height, 1, 1))
    return fig


def plot_timelines(
    runs: Sequence[tuple[str, Timeline]], path: str | Path, *, zoom_s: float = ZOOM_S
) -> Path:
    """Write :func:`timeline_figure` to ``path`` (PNG, SVG or PDF by extension)."""
    target = Path(path)
    fig = timeline_figure(runs, zoom_s=zoom_s)
    plt = require_matplotlib()
    try:
        try:
            fig.savefig(target, dpi=110)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot write the plot {target}: {exc}") from exc
    finally:
        plt.close(fig)
    return target
