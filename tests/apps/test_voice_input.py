"""VoiceInput.next_text: the listener's utterance to text, transcription started at a pause."""

from __future__ import annotations

import anyio
import numpy as np
import numpy.typing as npt
import pytest

from tests.voice.speech import silence
from voicepipe.apps.chat import VoiceInput
from voicepipe.lifecycle import Lifecycle
from voicepipe.voice.base import LISTEN_RATE
from voicepipe.voice.listener import Listener
from voicepipe.voice.microphone import RecordedMicrophone

pytestmark = pytest.mark.anyio


def tone(seconds: float) -> npt.NDArray[np.int16]:
    t = np.arange(round(LISTEN_RATE * seconds)) / LISTEN_RATE
    return (np.sin(2 * np.pi * 300 * t) * 8000).astype(np.int16)


class CountingTranscriber(Lifecycle):
    """Says how much audio it was given; records every call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    async def transcribe(self, samples: npt.NDArray[np.int16], sample_rate: int) -> str:
        self.calls.append(len(samples))
        await anyio.sleep(0.05)
        return f"{len(samples) / sample_rate:.2f} s"


async def _say(audio: npt.NDArray[np.int16]) -> tuple[str, CountingTranscriber, float, float]:
    microphone = RecordedMicrophone()
    stt = CountingTranscriber()
    voice = VoiceInput(Listener(microphone), stt)
    ended = 0.0

    async def user() -> None:
        nonlocal ended
        ended = await microphone.play(audio)
        await microphone.play(silence(2))

    with anyio.fail_after(15):
        async with anyio.create_task_group() as tg:
            tg.start_soon(user)
            text = await voice.next_text()
            tg.cancel_scope.cancel()
    assert voice.utterance_ended_at is not None
    return text, stt, ended, voice.utterance_ended_at


async def test_a_guess_made_at_the_final_pause_is_the_answer() -> None:
    text, stt, _, _ = await _say(np.concatenate([silence(0.5), tone(1.0)]))
    # One transcription, started at the pause (250 ms of silence), of the utterance then.
    assert len(stt.calls) == 1
    pause_audio = 0.2 + 1.0 + 0.25  # pre-roll + speech + the pause
    assert stt.calls[0] / LISTEN_RATE == pytest.approx(pause_audio, abs=0.05)
    # The answer is that guess: nothing was transcribed again when the end became sure.
    assert text == f"{stt.calls[0] / LISTEN_RATE:.2f} s"


async def test_speech_after_a_pause_drops_the_guess() -> None:
    # A 400 ms pause: past pause_ms (a guess starts) but short of end_ms (the user goes on).
    audio = np.concatenate([silence(0.5), tone(0.8), silence(0.4), tone(0.8)])
    text, stt, _, _ = await _say(audio)
    assert len(stt.calls) == 2  # the guess at the first pause, then one at the final pause
    assert stt.calls[0] / LISTEN_RATE == pytest.approx(0.2 + 0.8 + 0.25, abs=0.05)
    whole = 0.2 + 0.8 + 0.4 + 0.8 + 0.25
    assert stt.calls[1] / LISTEN_RATE == pytest.approx(whole, abs=0.05)
    assert text == f"{stt.calls[1] / LISTEN_RATE:.2f} s"


async def test_the_utterance_is_complete_end_ms_after_the_speech() -> None:
    _, _, ended, complete = await _say(np.concatenate([silence(0.5), tone(1.0)]))
    # end_ms (500) of silence, in 20 ms frames, plus a block period of slack.
    assert 0.45 <= complete - ended <= 0.65
