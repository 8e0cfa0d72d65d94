"""The echo canceller's parts: the played-audio reference, the canceller, the clocks."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import numpy as np
import pytest

from tests.voice.speech import piper_says
from voicepipe.audio.sinks.playback import reaches_speaker_at
from voicepipe.cli.chat import echo_canceller
from voicepipe.voice.base import LISTEN_RATE
from voicepipe.voice.echo import PENDING_S, EchoCanceller, PlayedAudio
from voicepipe.voice.microphone import captured_at
from voicepipe.voice.vad import level_dbfs

R = LISTEN_RATE


def tone(seconds: float, rate: int = R, hz: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def test_blocks_played_one_after_another_read_back_as_one_stream() -> None:
    played = PlayedAudio()
    audio = np.arange(1, 4801, dtype=np.int16)
    jitter = [0.0, 0.002, -0.003, 0.001, 0.0, -0.002]  # callback times wobble; samples don't
    for i, start in enumerate(range(0, len(audio), 800)):
        played.played(audio[start : start + 800], R, 10.0 + start / R + jitter[i])
    np.testing.assert_array_equal(played.take(10.0, len(audio)), audio)
    np.testing.assert_array_equal(played.take(10.0 + 100 / R, 50), audio[100:150])


def test_before_after_and_between_playback_the_reference_is_silence() -> None:
    played = PlayedAudio(keep_s=2.0)
    assert not played.take(5.0, 160).any()  # nothing played yet
    played.played(np.full(1600, 7, np.int16), R, 10.0)
    played.played(np.full(1600, 9, np.int16), R, 11.0)  # a new answer, 0.9 s later
    gap = played.take(10.0 + 1600 / R, 1600)
    assert not gap.any()
    assert (played.take(11.0, 1600) == 9).all()
    assert not played.take(11.1, 160)[-1:].any()  # past the end
    played.played(np.full(160, 3, np.int16), R, 14.0)  # 3 s on: the first answer is gone
    assert not played.take(10.0, 1600).any()


def test_audio_played_at_another_rate_is_kept_at_the_listening_rate() -> None:
    played = PlayedAudio()
    audio = tone(1.0, rate=48000)
    for start in range(0, len(audio), 480):
        played.played(audio[start : start + 480], 48000, 20.0 + start / 48000)
    reference = played.take(20.1, round(0.8 * R))
    assert abs(level_dbfs(reference) - level_dbfs(tone(0.8))) < 0.5
    spectrum = np.abs(np.fft.rfft(reference))
    assert abs(np.argmax(spectrum) * R / len(reference) - 440) < 3


def test_the_canceller_removes_an_echo_and_passes_the_microphone_through_otherwise() -> None:
    played = PlayedAudio()
    canceller = EchoCanceller(played)
    speech = piper_says("The sky looks blue because air scatters blue light more than red.")
    quiet = np.random.default_rng(1).normal(0, 200, R).astype(np.int16)
    cleaned, reference = canceller.process(quiet, 1.0)  # nothing played: untouched
    np.testing.assert_array_equal(cleaned, quiet)
    assert not reference.any()

    played.played(speech, R, 100.0)
    delay = round(0.05 * R)
    echo = np.concatenate([np.zeros(delay, np.int16), speech])[: len(speech)]
    out = np.concatenate(
        [canceller.process(echo[i : i + 320], 100.0 + i / R)[0] for i in range(0, len(echo), 320)]
    )
    late = slice(2 * R, len(echo))  # once the filter has learnt the echo path
    assert level_dbfs(out[late]) < level_dbfs(echo[late]) - 15


def test_the_canceller_gives_the_same_output_however_the_blocks_are_cut() -> None:
    speech = piper_says("Stop, that is enough, thank you.")
    echo = (np.concatenate([np.zeros(800, np.int16), speech]) // 2).astype(np.int16)

    def run(cuts: list[int]) -> tuple[np.ndarray, np.ndarray]:
        played = PlayedAudio()
        played.played(speech, R, 50.0)
        canceller = EchoCanceller(played)
        outs, refs, i = [], [], 0
        for n in cuts * (len(echo) // sum(cuts) + 1):
            if i >= len(echo):
                break
            cleaned, reference = canceller.process(echo[i : i + n], 50.0 + i / R)
            outs.append(cleaned)
            refs.append(reference)
            i += n
        return np.concatenate(outs), np.concatenate(refs)

    whole, whole_ref = run([320])
    uneven, uneven_ref = run([97, 211, 160, 33, 512])
    n = min(len(whole), len(uneven))  # a remainder under one 10 ms frame may still wait
    assert len(whole) - n < 160 and len(uneven) - n < 160
    np.testing.assert_array_equal(whole[:n], uneven[:n])
    np.testing.assert_array_equal(whole_ref[:n], uneven_ref[:n])


def test_portaudio_times_move_onto_our_clock() -> None:
    stamps = SimpleNamespace(
        currentTime=500.0, inputBufferAdcTime=499.99, outputBufferDacTime=500.03
    )
    before = __import__("time").perf_counter()
    assert captured_at(stamps, 0.02) == pytest.approx(before - 0.01, abs=0.005)
    at, stamped = reaches_speaker_at(stamps, None)
    assert stamped and at == pytest.approx(before + 0.03, abs=0.005)
    zeros = SimpleNamespace(currentTime=0.0, inputBufferAdcTime=0.0, outputBufferDacTime=0.0)
    assert captured_at(zeros, 0.02) == pytest.approx(before - 0.02, abs=0.005)
    stream = SimpleNamespace(latency=0.1)
    at, stamped = reaches_speaker_at(zeros, stream)
    assert not stamped and at == pytest.approx(before + 0.1, abs=0.005)
    # ALSA's plugins stamp the DAC time as "now": no stamp either, the latency stands in.
    now = SimpleNamespace(currentTime=500.0, inputBufferAdcTime=500.0, outputBufferDacTime=500.0)
    at, stamped = reaches_speaker_at(now, stream)
    assert not stamped and at == pytest.approx(before + 0.1, abs=0.005)


def chat_args(**changes: object) -> argparse.Namespace:
    return argparse.Namespace(**{"voice_barge_in": True, "echo_cancel": None, **changes})


def test_chat_cancels_the_echo_by_default_when_barge_in_by_voice_is_on() -> None:
    assert isinstance(echo_canceller(chat_args()), EchoCanceller)
    assert echo_canceller(chat_args(echo_cancel=False)) is None
    assert echo_canceller(chat_args(voice_barge_in=False)) is None


def test_a_device_that_plays_faster_than_real_time_cannot_flood_the_reference() -> None:
    """An unpaced device (a file) calls back as fast as it can: only the newest audio,
    ``PENDING_S`` of it, waits for the listener, so reading it stays cheap."""
    played = PlayedAudio()
    block = np.full(22050, 5, np.int16)  # a second of audio per callback
    for i in range(600):
        played.played(block, 22050, 30.0 + i * 0.001)
    assert played._pending_s <= PENDING_S + 1
    assert (played.take(30.6, 1600) == 5).all()  # the newest is there
