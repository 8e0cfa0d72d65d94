"""`voicepipe traces`: list recorded runs, show one's breakdown and events, plot it."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from voicepipe.apps.traces import Trace, TraceStore, default_path
from voicepipe.cli.common import print_metrics
from voicepipe.errors import ConfigError


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "traces",
        help="list recorded runs; show or plot one",
        description="Runs recorded with --trace (bench records by default) are kept in "
        f"{default_path()} ($VOICEPIPE_TRACE_DB overrides it). `voicepipe traces` lists the "
        "latest; `voicepipe traces show ID` prints where its TTFA went and every event.",
    )
    p.add_argument("--db", metavar="FILE", help="the trace store (default: see above)")
    p.add_argument("-n", type=int, default=20, metavar="N", help="how many runs to list (20)")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    show = actions.add_parser("show", help="one run: metrics, breakdown, events")
    show.add_argument("id", type=int, help="the run's id (first column of the list)")
    show.add_argument("--plot", metavar="FILE.png", help="draw its timeline (voicepipe[plot])")
    show.add_argument("--json", action="store_true", help="print the run as JSON instead")
    show.add_argument(
        "--events",
        type=int,
        default=DEFAULT_EVENTS,
        metavar="N",
        help=f"show the first N events (default {DEFAULT_EVENTS}; 0: all; --json has all)",
    )
    p.set_defaults(run=run, is_async=False, needs_prompt=False)


DEFAULT_EVENTS = 40  # the first ~40 events cover the TTFA of a typical run


def _console() -> Console:
    console = Console(soft_wrap=False, highlight=False)
    if not console.is_terminal:
        console = Console(width=120, soft_wrap=False, highlight=False, no_color=True)
    return console


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _list(store: TraceStore, limit: int) -> None:
    infos = store.recent(limit) if store.path.exists() else []
    if not infos:
        # A fresh install has no store yet: that is not an error.
        print(
            f"no traces recorded yet ({store.path}): `voicepipe bench` records its runs; "
            "say, synth and chat record with --trace"
        )
        return
    table = Table(title=escape(f"recorded runs in {store.path}"), title_justify="left")
    for column, justify in (
        ("id", "right"),
        ("when", "left"),
        ("command", "left"),
        ("llm", "left"),
        ("tts", "left"),
        ("chunking", "left"),
        ("ttfa ms", "right"),
        ("audible ms", "right"),  # playback only: the first sample left the speaker
        ("total ms", "right"),
        ("audio s", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for info in infos:
        when = datetime.datetime.fromtimestamp(info.created).strftime("%Y-%m-%d %H:%M:%S")
        c = info.config
        table.add_row(
            str(info.id),
            when,
            escape(info.command),
            escape(str(c.get("llm", ""))),
            escape(str(c.get("tts", ""))),
            escape(str(c.get("chunking", ""))),
            _ms(info.ttfa_ms),
            _ms(info.audible_ms),
            _ms(info.total_ms),
            f"{info.audio_ms / 1000:.1f}",
        )
    _console().print(table)


def _show(trace: Trace, limit: int) -> None:
    info = trace.info
    when = datetime.datetime.fromtimestamp(info.created).isoformat(timespec="seconds")
    print(f"trace {info.id}: {info.command} at {when}")
    print("config: " + ", ".join(f"{k}={v}" for k, v in info.config.items() if v is not None))
    if trace.prompt is not None:
        print(f"prompt: {trace.prompt}")
    print(f"text: {info.answer_chars} chars written, {info.speech_chars} chars spoken")
    print_metrics(trace.metrics, sys.stdout)
    table = Table(title="events (ms from the LLM request)", title_justify="left")
    table.add_column("t ms", justify="right")
    table.add_column("event")
    table.add_column("data")
    events = trace.timeline.events
    shown = events if limit <= 0 else events[:limit]
    for event in shown:
        data = ", ".join(
            f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in event.data.items()
        )
        table.add_row(f"{event.t * 1000:.1f}", escape(event.name), escape(data))
    _console().print(table)
    if len(shown) < len(events):
        print(
            f"… {len(events) - len(shown)} more of {len(events)} events not shown "
            "(--events 0 shows all; --json prints them)"
        )


def run(args: argparse.Namespace) -> int:
    if args.action == "show" and args.events < 0:
        raise ConfigError("--events must be 0 (all) or more")
    store = TraceStore(args.db)
    if args.action != "show":
        _list(store, args.n)
        return 0
    trace = store.load(args.id)
    if args.json:
        payload = {
            "id": trace.info.id,
            "created": trace.info.created,
            "command": trace.info.command,
            "config": trace.info.config,
            "metrics": trace.metrics.as_dict(),
            "breakdown": trace.metrics.breakdown(),
            "events": [
                {"name": e.name, "t_ms": e.t * 1000, "data": e.data} for e in trace.timeline.events
            ],
        }
        print(json.dumps(payload, indent=2))
    else:
        _show(trace, args.events)
    if args.plot:
        from voicepipe.apps.plot import plot_timelines

        plot_timelines(
            [(f"trace {trace.info.id} ({trace.info.command})", trace.timeline)], args.plot
        )
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
