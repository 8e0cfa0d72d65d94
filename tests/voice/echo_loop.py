"""A device loop in software: the microphone hears the assistant's echo and the user.

The microphone (a RecordedMicrophone, fed in real time) hears the assistant's answer as an
echo (Piper speech, 50 ms later, attenuated) and, from 3 s on, the user speaking at the
answer's own level. Used by tests/voice/test_echo.py and scripts/bench_barge_in.py.
"""

from __future__ import annotations

import time

import anyio
import numpy as np
import numpy.typing as npt

from tests.voice.speech import piper_says, silence
from voicepipe.voice.listener import Listener
from voicepipe.voice.microphone import RecordedMicrophone
from voicepipe.voice.vad import LISTEN_RATE, VoiceActivity, make_classifier

ANSWER = (
    "The sky looks blue because air scatters short blue wavelengths of sunlight more than "
    "long red ones, and that scattered light reaches your eyes from every direction. At "
    "sunset the light travels farther through the air, so more blue is scattered away and "
    "the reds and oranges remain."
)
USER = "Stop, that is enough, thank you."
USER_AT_S = 3.0
ECHO_DELAY_S = 0.05


def scaled(x: npt.NDArray[np.int16], db: float) -> npt.NDArray[np.float64]:
    return x.astype(np.float64) * 10 ** (db / 20)


def microphone_signal(echo_db: float, with_user: bool) -> npt.NDArray[np.int16]:
    signal = np.concatenate([silence(ECHO_DELAY_S), scaled(piper_says(ANSWER), echo_db)])
    if with_user:
        user = piper_says(USER).astype(np.float64)
        start = int(USER_AT_S * LISTEN_RATE)
        signal = np.concatenate([signal, np.zeros(max(0, start + len(user) - len(signal)))])
        signal[start : start + len(user)] += user
    return np.clip(signal, -32768, 32767).astype(np.int16)


async def interrupted_at(signal: npt.NDArray[np.int16], vad: str) -> float | None:
    """Seconds from the start of playback to the barge-in, None if there was none."""
    microphone = RecordedMicrophone()
    listener = Listener(microphone, VoiceActivity(), make_classifier(vad))
    listener.hear_echo()
    started = time.perf_counter()
    heard: float | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(microphone.play, signal)
        listener.playback_started()
        with anyio.move_on_after(len(signal) / LISTEN_RATE + 0.3):
            await listener.wait_for_speech()
            heard = time.perf_counter() - started
        tg.cancel_scope.cancel()
    return heard
