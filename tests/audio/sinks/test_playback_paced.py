"""Playback through real PortAudio on a real-time paced device (ALSA `file` into a paced FIFO):
stops land within 50 ms and free the device, a slow producer is counted as underruns."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.audio.conftest import PacedDevice

STOP = """
import json, time
import anyio, numpy as np
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.playback import PlaybackSink

tone = (np.sin(2 * np.pi * 440 * np.arange(4800) / 48000) * 12000).astype(np.int16)

async def main():
    sink = PlaybackSink()
    await sink.start()
    for i in range(15):  # 1.5 s; backpressure keeps 0.5 s buffered, so ~1 s has played
        await sink.write(AudioChunk(tone, 48000, i))
    called = time.time()
    await sink.abort()
    closed = time.time()
    again = PlaybackSink()  # the device was freed: it opens and plays again
    await again.start()
    await again.write(AudioChunk(np.full(9600, 50, np.int16), 48000))  # quiet, to tell apart
    await again.finish()
    print(json.dumps({"called": called, "closed": closed, "open": sink._stream is not None}))

anyio.run(main)
"""


def test_abort_silences_within_50_ms_with_a_fade_and_frees_the_device(
    paced_device: PacedDevice,
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", STOP],
        env=paced_device.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["open"] is False
    assert report["closed"] - report["called"] < 0.050
    times, frames = paced_device.played()
    loud = np.flatnonzero(np.abs(frames) > 100)
    assert len(loud) > 48000 * 0.8  # about a second played before the stop
    heard_after = times[loud[-1]] - report["called"]
    print(
        f"stop: closed after {(report['closed'] - report['called']) * 1000:.1f} ms, "
        f"sound until {heard_after * 1000:.1f} ms"
    )
    assert heard_after < 0.050, f"sound went on {heard_after * 1000:.0f} ms after abort()"
    # No click: the last 5 ms of sound end in a ramp, not at full level.
    end = frames[loud[-1] - 240 : loud[-1] + 1].astype(np.int32)
    assert np.abs(end[-24:]).max() < 0.5 * np.abs(end[:48]).max()
    quiet = np.flatnonzero((np.abs(frames) > 30) & (np.abs(frames) <= 60))
    assert (quiet > loud[-1]).sum() > 9000  # the reopened device played


SLOW = """
import json
import anyio, numpy as np
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.playback import PlaybackSink

tone = (np.sin(2 * np.pi * 440 * np.arange(14400) / 48000) * 12000).astype(np.int16)  # 0.3 s

async def main():
    sink = PlaybackSink(preroll_ms=80)
    await sink.start()
    await sink.write(AudioChunk(tone, 48000, 0))
    await anyio.sleep(0.6)  # the slow producer: 0.3 s of audio, then 0.6 s of nothing
    await sink.write(AudioChunk(tone, 48000, 1))
    await sink.finish()
    print(json.dumps([s for _, s in sink.take_underruns()]))

anyio.run(main)
"""


def test_a_slow_producer_is_counted_as_underruns(paced_device: PacedDevice) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SLOW],
        env=paced_device.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    underruns = json.loads(result.stdout)
    assert len(underruns) == 1
    assert underruns[0] == pytest.approx(0.3, abs=0.1)
    _, frames = paced_device.played()
    loud = np.abs(frames) > 100
    # On the device: sound, a gap of about 0.3 s, sound.
    idx = np.flatnonzero(loud)
    longest_gap = int(np.diff(idx).max()) / 48000
    assert longest_gap == pytest.approx(0.3, abs=0.1)


def test_finish_drains_in_real_time(paced_device: PacedDevice) -> None:
    script = SLOW.replace("await anyio.sleep(0.6)", "pass")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", script], env=paced_device.env, capture_output=True, text=True
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []  # a steady producer: no underrun
    assert elapsed > 0.6  # 0.6 s of audio took real time: the device is paced
    _, frames = paced_device.played()
    assert (np.abs(frames) > 100).sum() == pytest.approx(28800, abs=200)


TEE = """
import json, sys
import anyio, numpy as np
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.playback import PlaybackSink
from voicepipe.audio.sinks.null import NullSink
from voicepipe.audio.sinks.tee import TeeSink

class StallingDisk(NullSink):
    async def write(self, chunk):
        if chunk.text_index == 2:
            await anyio.sleep(1.0)  # the disk stalls for a second

tone = (np.sin(2 * np.pi * 440 * np.arange(4800) / 48000) * 12000).astype(np.int16)

async def play(tee):
    await tee.start()
    for i in range(20):  # 2 s of audio, produced faster than real time
        await tee.write(AudioChunk(tone, 48000, i))
    await tee.finish()

async def main():
    playback = PlaybackSink()
    tee = TeeSink(playback, StallingDisk(realtime=False))
    if sys.argv[1] == "own-pace":
        async with tee:
            await play(tee)
    else:
        await play(tee)
    print(json.dumps(sum(s for _, s in playback.take_underruns())))

anyio.run(main)
"""


@pytest.mark.parametrize("mode", ["own-pace", "lockstep"])
def test_a_stalling_file_does_not_stall_playback_through_the_tee(
    paced_device: PacedDevice, mode: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", TEE, mode],
        env=paced_device.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    underrun_s = json.loads(result.stdout)
    if mode == "own-pace":  # `async with TeeSink(...)`: each sink has its own task
        assert underrun_s == 0
    else:  # written together, chunk by chunk: the stall reaches the speakers
        assert underrun_s > 0.3
