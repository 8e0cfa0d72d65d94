"""A device loop in software: the microphone hears the assistant's echo and the user.

The microphone (a RecordedMicrophone, fed in real time) hears the assistant's answer as an
echo (Piper speech, 50 ms later, attenuated) and, from 3 s on, the user speaking at the
answer's own level. With echo cancellation the listener is told what was played and when,
as the playback sink tells it in `voicepipe chat`. Used by tests/voice/test_echo.py and
scripts/bench_barge_in.py.
"""

from __future__ import annotations

import time

import anyio
import numpy as np
import numpy.typing as npt

from tests.voice.speech import piper_says, silence
from voicepipe.voice.base import LISTEN_RATE
from voicepipe.voice.classifiers import make_classifier
from voicepipe.voice.echo import EchoCanceller, PlayedAudio
from voicepipe.voice.listener import Listener
from voicepipe.voice.microphone import RecordedMicrophone
from voicepipe.voice.vad import VoiceActivity

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


def user_onset_s() -> float:
    """When the user's first word starts: USER_AT_S plus Piper's leading silence."""
    user = np.abs(piper_says(USER).astype(np.int32))
    return USER_AT_S + int(np.argmax(user > 1000)) / LISTEN_RATE


async def interrupted_at(
    signal: npt.NDArray[np.int16], vad: str, *, cancel_echo: bool = False
) -> float | None:
    """Seconds from the start of playback to the barge-in, None if there was none."""
    microphone = RecordedMicrophone()
    played = PlayedAudio()
    echo = EchoCanceller(played) if cancel_echo else None
    listener = Listener(microphone, VoiceActivity(), make_classifier(vad), echo)
    listener.hear_echo()
    started = time.perf_counter() + 0.02
    played.played(piper_says(ANSWER), LISTEN_RATE, started)
    heard: float | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: microphone.play(signal, start_at=started))
        listener.playback_started()
        with anyio.move_on_after(len(signal) / LISTEN_RATE + 0.3):
            await listener.wait_for_speech()
            heard = time.perf_counter() - started
        tg.cancel_scope.cancel()
    return heard


async def interrupted_at_once(
    signal: npt.NDArray[np.int16], vad: str, *, cancel_echo: bool = True
) -> float | None:
    """``interrupted_at`` without the wait: every block is captured before the listener
    reads (same blocks, same capture times); the barge-in's time is the end of the block
    that started the utterance."""
    block_s = 0.02
    block = round(LISTEN_RATE * block_s)
    microphone = RecordedMicrophone(
        block_ms=block_s * 1000, max_buffer_s=len(signal) / LISTEN_RATE + 1
    )
    played = PlayedAudio()
    echo = EchoCanceller(played) if cancel_echo else None
    listener = Listener(microphone, VoiceActivity(), make_classifier(vad), echo)
    listener.hear_echo()
    started = 1000.0
    played.played(piper_says(ANSWER), LISTEN_RATE, started)
    blocks = [signal[i : i + block] for i in range(0, len(signal), block)]
    microphone._blocks.extend((started + i * block_s, b) for i, b in enumerate(blocks))
    listener.playback_started()
    heard: float | None = None
    async with anyio.create_task_group() as tg:

        async def listen() -> None:
            nonlocal heard
            await listener.wait_for_speech()
            heard = (len(blocks) - len(microphone._blocks)) * block_s
            tg.cancel_scope.cancel()

        tg.start_soon(listen)
        for _ in range(len(blocks)):  # the listener reads each block whole before it waits
            if not microphone._blocks:
                break
            await anyio.sleep(0.01)
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()  # every block was read and nobody spoke
    return heard
