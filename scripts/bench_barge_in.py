#!/usr/bin/env python3
"""Barge-in by voice with the assistant's own voice in the microphone: does it interrupt?

The microphone (a RecordedMicrophone, fed in real time) hears the assistant's answer as an
echo (Piper speech, 50 ms later, attenuated by ECHO dB) and, from 3 s on, the user saying
"Stop, that is enough, thank you." at the answer's own level. The listener runs as in
`chat --listen` (echo measured in the first 200 ms of playback, then a raised threshold).
Reported per echo level and detector: whether the echo alone interrupted (it must not), and
the time from the user's first word to the interruption (the issue's target: 300 ms).

    scripts/bench_barge_in.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.voice.echo_loop import USER_AT_S, interrupted_at, microphone_signal


async def main() -> None:
    print(f"{'detector':9} {'echo':>7}  {'echo alone':<18} {'user speaks over it':<22}")
    for vad in ("silero", "energy"):
        for echo_db in (-30, -20, -12, -6, 0):
            alone = await interrupted_at(microphone_signal(echo_db, False), vad)
            over = await interrupted_at(microphone_signal(echo_db, True), vad)
            false_alarm = "no barge-in" if alone is None else f"BARGE-IN at {alone:.2f} s"
            caught = "missed" if over is None else f"{(over - USER_AT_S) * 1000:.0f} ms after onset"
            print(f"{vad:9} {echo_db:>4} dB  {false_alarm:<18} {caught:<22}", flush=True)


if __name__ == "__main__":
    anyio.run(main)
