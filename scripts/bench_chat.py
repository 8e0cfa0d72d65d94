#!/usr/bin/env python
"""Chat figures on the embedded default: warm TTFA per turn, and barge-in stop latency.

Stop latency is keypress -> sink aborted: a byte is written into a pseudo-terminal whose other
end the chat's keyboard watches (exactly as in `voicepipe chat`), and the clock stops when the
sink's ``abort()`` returns. With no sound card, playback goes to ALSA's null device.

    .venv/bin/python scripts/bench_chat.py --turns 5 --interruptions 10 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

NULL_ASOUNDRC = 'pcm.!default { type plug; slave { pcm "null"; rate 22050; channels 1 } }\n'
PROMPTS = [
    "Hello! Who are you?",
    "What is the capital of France?",
    "Tell me one fact about it.",
    "How far is it from London?",
    "Thanks. Say goodbye in one sentence.",
]
STORY = "Tell me a long story about a dragon and a knight."


def use_null_device_if_none() -> str:
    """Point ALSA's default at its null device when there is no sound card.

    Runs before anything imports sounddevice: PortAudio reads ALSA's configuration once.
    """
    try:
        cards = Path("/proc/asound/cards").read_text()
    except OSError:
        cards = ""
    if cards.strip() and "no soundcards" not in cards:
        return "default device"
    home = Path(tempfile.mkdtemp(prefix="voicepipe-bench-"))
    (home / ".asoundrc").write_text(NULL_ASOUNDRC)
    os.environ["HOME"] = str(home)
    return "ALSA null device (no sound card)"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from voicepipe.apps.chat import Conversation
    from voicepipe.audio.sinks.base import AudioSink
    from voicepipe.audio.sinks.null import NullSink
    from voicepipe.audio.sinks.playback import PlaybackSink
    from voicepipe.cli.keyboard import Keyboard
    from voicepipe.events import AudioPlayed
    from voicepipe.llm.local import ASSISTANT_SYSTEM
    from voicepipe.pipeline import Pipeline
    from voicepipe.providers import make_llm, make_tts

    def sink() -> AudioSink:
        # ALSA's null device is not paced: its callback spins a core, which would slow the LLM
        # on a small machine, so TTFA (audio handed to the sink) is measured on a null sink.
        return PlaybackSink() if args.playback else NullSink()

    llm = make_llm("local", max_tokens=args.max_tokens, seed=1)
    async with Pipeline(llm, make_tts("piper"), system=ASSISTANT_SYSTEM) as pipe:
        conv = Conversation(pipe)
        ttfa: list[float] = []
        for prompt in PROMPTS[: args.turns]:
            async with conv.turn(prompt, NullSink()) as turn:
                pass
            assert turn.run is not None
            m = turn.run.metrics
            ttfa.append(m.ttfa_ms or float("nan"))
            print(
                f"turn {len(ttfa)}: TTFA {ttfa[-1]:.0f} ms (first token {m.ttft_ms or 0:.0f}, "
                f"first chunk {m.first_chunk_ms or 0:.0f}: {m.first_chunk_text!r}) {prompt!r}",
                file=sys.stderr,
            )

        master, slave = os.openpty()
        stops: list[float] = []
        noticed: list[float] = []  # keypress -> interrupt(): the event loop saw the key
        rng = random.Random(7)
        with os.fdopen(slave, "r") as tty:
            keyboard = Keyboard(tty)
            for n in range(args.interruptions):
                conv.reset()
                pressed = 0.0
                with keyboard.keys():
                    async with anyio.create_task_group() as tg:
                        async with conv.turn(STORY, sink()) as turn:

                            async def watch() -> None:
                                await keyboard.wait_key()
                                turn.interrupt()

                            tg.start_soon(watch)
                            async for event in turn:
                                if isinstance(event, AudioPlayed) and not pressed:
                                    await anyio.sleep(rng.uniform(0.1, 0.8))  # mid-answer
                                    pressed = time.perf_counter()
                                    os.write(master, b"\n")  # the keypress
                        tg.cancel_scope.cancel()
                if turn.sink.aborted_at is None or not pressed:
                    print(f"interruption {n + 1}: the answer ended first", file=sys.stderr)
                    continue
                stops.append((turn.sink.aborted_at - pressed) * 1000)
                latency = turn.stop_latency_ms or 0.0
                noticed.append(stops[-1] - latency)
                print(
                    f"interruption {n + 1}: stopped in {stops[-1]:.1f} ms "
                    f"(key seen after {noticed[-1]:.1f}, then {latency:.1f} to abort)",
                    file=sys.stderr,
                )
            keyboard.close()
        os.close(master)
    warm = ttfa[1:]
    return {
        "device": args.device_note,
        "ttfa_ms_per_turn": [round(v, 1) for v in ttfa],
        "warm_ttfa_ms": {"p50": round(statistics.median(warm), 1), "max": round(max(warm), 1)}
        if warm
        else None,
        "stop_latency_ms": {
            "p50": round(pct(stops, 0.5), 1),
            "p95": round(pct(stops, 0.95), 1),
            "n": len(stops),
            "key_seen_p50": round(pct(noticed, 0.5), 1),
        }
        if stops
        else None,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--interruptions", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=80)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    args.device_note = use_null_device_if_none()
    args.playback = True
    result = anyio.run(main, args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
