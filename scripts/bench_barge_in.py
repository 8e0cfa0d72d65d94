#!/usr/bin/env python3
"""Barge-in by voice with the assistant's own voice in the microphone: does it interrupt?

The microphone (a RecordedMicrophone, fed in real time) hears the assistant's answer as an
echo (Piper speech, 50 ms later, attenuated by ECHO dB) and, from 3 s on, the user saying
"Stop, that is enough, thank you." at the answer's own level. The listener runs as in
`chat --listen`: with echo cancellation (the played audio as the reference, the threshold
following it), and without (echo measured in the first 200 ms of playback, then a raised
threshold). Reported per echo level and detector: whether the echo alone interrupted (it
must not), and the time from the user's first word to the interruption (the issue's
target: 300 ms).

    scripts/bench_barge_in.py [--runs N]
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.voice.echo_loop import interrupted_at, microphone_signal, user_onset_s


async def main(runs: int) -> None:
    onset = user_onset_s()
    print(f"{'cancel':7} {'detector':9} {'echo':>7}  {'echo alone':<18} {'user speaks over it'}")
    for cancel in (True, False):
        for vad in ("silero", "energy"):
            for echo_db in (-30, -20, -12, -6, 0):
                alone = await interrupted_at(
                    microphone_signal(echo_db, False), vad, cancel_echo=cancel
                )
                caught = []
                for _ in range(runs):
                    over = await interrupted_at(
                        microphone_signal(echo_db, True), vad, cancel_echo=cancel
                    )
                    caught.append("missed" if over is None else f"{(over - onset) * 1000:.0f}")
                false_alarm = "no barge-in" if alone is None else f"BARGE-IN at {alone:.2f} s"
                print(
                    f"{'aec' if cancel else 'none':7} {vad:9} {echo_db:>4} dB  {false_alarm:<18} "
                    f"{', '.join(caught)} ms after onset",
                    flush=True,
                )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="user-over-echo runs per setting")
    anyio.run(main, parser.parse_args().runs)
