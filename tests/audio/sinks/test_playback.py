"""Playback through real PortAudio into ALSA's `file` plugin: what is played is what was sent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import numpy as np
import pytest

from tests import run_script
from tests.audio.conftest import alsa_capture_env

PLAY = """
import json, sys
import anyio, numpy as np
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.playback import PlaybackSink

async def main():
    sink = PlaybackSink(smooth_joins=False)  # random samples: every join is abrupt
    await sink.start()
    rng = np.random.default_rng(7)
    for i, n in enumerate([3000, 11025, 5, 22050, 4410]):
        samples = rng.integers(1, 20000, n).astype(np.int16)  # no zeros: silence is ours
        await sink.write(AudioChunk(samples, 22050, i))
    await sink.finish()
    print(json.dumps({"frames_played": sink.frames_played, "rate": sink.sample_rate}))

anyio.run(main)
"""


def expected_samples() -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.concatenate(
        [rng.integers(1, 20000, n).astype(np.int16) for n in [3000, 11025, 5, 22050, 4410]]
    )


def test_played_samples_are_the_written_samples_in_order(tmp_path: Path) -> None:
    env, capture = alsa_capture_env(tmp_path)
    report = run_script(PLAY, env=env)
    expected = expected_samples()
    assert report == {"frames_played": len(expected), "rate": 22050}
    played = np.fromfile(capture, dtype="<i2")
    # The device is not paced, so silence (underrun padding, device buffer) surrounds the
    # audio; every non-zero sample must be ours, all of them, in order.
    np.testing.assert_array_equal(played[played != 0], expected)


TAP = """
import json
import anyio, numpy as np
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.playback import PlaybackSink

async def main():
    heard = []
    sink = PlaybackSink(smooth_joins=False, on_played=lambda s, r, at: heard.append((s, r, at)))
    await sink.start()
    rng = np.random.default_rng(7)
    for i, n in enumerate([3000, 11025, 5, 22050, 4410]):
        await sink.write(AudioChunk(rng.integers(1, 20000, n).astype(np.int16), 22050, i))
    await sink.finish()
    samples = np.concatenate([s for s, _, _ in heard])
    print(json.dumps({
        "samples": samples[samples != 0].tolist(),
        "blocks": sum(len(s) for s, _, _ in heard),
        "rates": sorted({r for _, r, _ in heard}),
        "times_rise": all(b[2] > a[2] for a, b in zip(heard, heard[1:])),
        "frames_played": sink.frames_played,
    }))

anyio.run(main)
"""


def test_the_echo_reference_hears_every_sample_the_device_gets(tmp_path: Path) -> None:
    """``on_played`` (the echo canceller's reference) sees exactly what the callback wrote,
    block by block through real PortAudio, with times that move forward."""
    env, capture = alsa_capture_env(tmp_path)
    report = run_script(TAP, env=env)
    np.testing.assert_array_equal(np.array(report["samples"], np.int16), expected_samples())
    assert report["rates"] == [22050] and report["times_rise"]
    assert report["blocks"] >= report["frames_played"]  # silence padding included
    played = np.fromfile(capture, dtype="<i2")
    np.testing.assert_array_equal(played[played != 0], expected_samples())


def test_no_device_is_a_clear_error(tmp_path: Path) -> None:
    env, _ = alsa_capture_env(tmp_path)
    script = (
        "import anyio\n"
        "from voicepipe.audio.sinks.playback import PlaybackSink\n"
        "from voicepipe.errors import AudioError\n"
        "try:\n"
        "    anyio.run(PlaybackSink('no-such-device').start)\n"
        "except AudioError as e:\n"
        "    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert "no output device matches 'no-such-device'" in result.stdout


def test_underrun_accounting_in_the_callback_with_a_fake_clock() -> None:
    from voicepipe.audio.sinks.playback import PlaybackSink

    now = [100.0]
    sink = PlaybackSink(clock=lambda: now[0])
    sink.sample_rate = 1000
    out = np.zeros((100, 1), np.int16)

    def play(samples: int) -> None:
        if samples:
            sink._push(np.full(samples, 7, np.int16))
        sink._callback(out, 100, None, None)
        now[0] += 0.1

    play(100)  # a full period: fine
    play(40)  # runs dry 60 frames in: an underrun starts now
    assert out[40:, 0].tolist() == [0] * 60
    play(0)  # still dry: 100 more frames of silence
    play(100)  # audio again: the underrun ends
    play(250)  # one full period, 150 frames stay buffered
    assert sink.take_underruns() == [(100.1, 0.16)]
    assert sink.take_underruns() == []
    assert sink.frames_played == 340 and sink.buffered_seconds() == 0.15


def test_a_stereo_device_gets_the_audio_on_both_channels() -> None:
    from voicepipe.audio.sinks.playback import PlaybackSink

    sink = PlaybackSink()
    sink.sample_rate = 1000
    sink._push(np.arange(1, 61, dtype=np.int16))
    out = np.full((50, 2), -1, np.int16)
    sink._callback(out, 50, None, None)
    np.testing.assert_array_equal(out[:, 0], np.arange(1, 51))
    np.testing.assert_array_equal(out[:, 1], out[:, 0])


@pytest.mark.anyio
async def test_a_device_that_stops_playing_fails_instead_of_hanging() -> None:
    from voicepipe.audio.sinks.playback import PlaybackSink
    from voicepipe.errors import AudioError

    # As if the device vanished mid-playback: the stream is started but its callback no
    # longer runs, so the buffer never drains.
    sink = PlaybackSink(max_buffer_s=0.1, stall_timeout_s=0.3)
    sink.sample_rate = 1000
    sink._started = True
    sink._push(np.full(1000, 7, np.int16))
    with anyio.fail_after(5), pytest.raises(AudioError, match="stopped playing"):
        await sink._wait_while(lambda: sink.buffered_seconds() > 0.1, lambda: 0.05)
    # A device that keeps consuming is waited for, however long it takes.
    sink2 = PlaybackSink(stall_timeout_s=0.2)
    sink2.sample_rate = 1000
    sink2._push(np.full(500, 7, np.int16))
    out = np.zeros((50, 1), np.int16)

    def drained() -> float:
        sink2._callback(out, 50, None, None)  # 50 ms of audio each time the wait checks
        return 0.05

    with anyio.fail_after(5):
        await sink2._wait_while(lambda: sink2.buffered_seconds() > 0, drained)
    assert sink2.frames_played == 500
