"""`voicepipe devices`: list audio output devices (for --device) and microphones."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "devices",
        help="list audio output devices and microphones (* marks the default)",
        description="Outputs are for --device (say, chat); inputs for --input-device "
        "(chat --listen). Give an index or part of a name.",
    )
    p.set_defaults(run=run, is_async=False, needs_prompt=False)


def _show(title: str, devices: list[dict[str, Any]], empty: str) -> None:
    print(f"{title}:")
    if not devices:
        print(f"  {empty}")
    for d in devices:
        mark = "*" if d["default"] else " "
        print(
            f"{mark} {d['index']:>3}  {d['name']}  "
            f"({d['channels']} ch, {d['default_samplerate']:.0f} Hz)"
        )


def run(args: argparse.Namespace) -> int:
    from voicepipe.audio.devices import list_devices

    _show("outputs", list_devices("output"), "none (write audio to a file with -o FILE)")
    _show("inputs", list_devices("input"), "none (chat without --listen and type)")
    return 0
