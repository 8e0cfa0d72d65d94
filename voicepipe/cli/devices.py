"""`voicepipe devices`: list audio output devices."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("devices", help="list audio output devices (* marks the default)")
    p.set_defaults(run=run, is_async=False, needs_prompt=False)


def run(args: argparse.Namespace) -> int:
    from voicepipe.audio.playback import output_devices

    devices = output_devices()
    if not devices:
        print("no audio output devices (write audio to a file with -o FILE)")
    for d in devices:
        mark = "*" if d["default"] else " "
        print(
            f"{mark} {d['index']:>3}  {d['name']}  "
            f"({d['channels']} ch, {d['default_samplerate']:.0f} Hz)"
        )
    return 0
