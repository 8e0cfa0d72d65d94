"""Playback through real PortAudio on a real-time paced device (ALSA `file` into a paced FIFO):
stops land within 50 ms and free the device, a slow producer is counted as underruns, and the
first sample is timed when the device takes it (``audible_ms``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests import run_script
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
    report = run_script(STOP, env=paced_device.env)
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
    underruns = run_script(SLOW, env=paced_device.env)
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
    underrun_s = run_script(TEE, mode, env=paced_device.env)
    if mode == "own-pace":  # `async with TeeSink(...)`: each sink has its own task
        assert underrun_s == 0
    else:  # written together, chunk by chunk: the stall reaches the speakers
        assert underrun_s > 0.3


AUDIBLE = """
import json, sys, time
import anyio, numpy as np
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.playback import PlaybackSink

async def main(producer):
    sink = PlaybackSink(preroll_ms=80)
    await sink.start()
    seconds = 0.1 if producer == "fast" else 0.02
    tone = (np.sin(2 * np.pi * 440 * np.arange(int(48000 * seconds)) / 48000) * 12000)
    written = time.perf_counter()
    for i in range(5 if producer == "fast" else 20):
        await sink.write(AudioChunk(tone.astype(np.int16), 48000, i))
        if producer == "real-time":  # 20 ms of audio every 20 ms: the pre-roll takes 80 ms
            await anyio.sleep(seconds)
    await sink.finish()
    event, again = sink.take_audible(), sink.take_audible()
    wall = time.time() - time.perf_counter()  # perf_counter -> wall clock, to meet the device
    print(json.dumps({
        "written": written, "audible": event.t, "data": event.data, "again": again,
        "audible_wall": event.t + wall,
    }))

anyio.run(main, sys.argv[2], backend=sys.argv[1])
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("producer", ["fast", "real-time"])
def test_audible_is_when_the_first_sample_left_the_device(
    paced_device: PacedDevice, backend: str, producer: str
) -> None:
    report = run_script(AUDIBLE, backend, producer, env=paced_device.env)
    assert report["again"] is None  # taken once per run
    gap = report["audible"] - report["written"]
    latency = report["data"]["device_latency_s"]
    assert 0 < latency < 0.5
    # Heard no sooner than the device's own latency after the first write, nor before the
    # pre-roll was buffered; and not long after.
    assert gap >= latency
    if producer == "real-time":
        assert gap >= 0.08 + latency
    assert gap < 1.0
    # The device says when it took the first sample: the two agree within a few ms (the test
    # device drains in 2.7 ms blocks; 2 shared cores add scheduling jitter).
    times, frames = paced_device.played()
    first_loud = times[np.flatnonzero(np.abs(frames) > 100)[0]]
    off_ms = (report["audible_wall"] - first_loud) * 1000
    print(f"audible [{producer}]: {gap * 1000:.1f} ms after the first write, {off_ms:+.1f} ms off")
    assert abs(off_ms) < 25


RUN = """
import json, sys
import anyio
from tests.engines import ToneTTS
from voicepipe import Pipeline, PlaybackSink
from voicepipe.audio.sinks.files import WavFileSink
from voicepipe.audio.sinks.tee import TeeSink
from voicepipe.llm.text import TextSource

async def main(sinks, path):
    tts = ToneTTS(48000, seconds_per_word=0.1)
    async with Pipeline(TextSource(0), tts, chunking="sentence") as pipe:
        if sinks == "playback":
            run = await pipe.speak("One two three. Four five.", PlaybackSink())
        elif sinks == "file":
            run = await pipe.speak("One two three. Four five.", WavFileSink(path))
        else:  # as `say -o` does: each sink fed by its own task
            async with TeeSink(PlaybackSink(), WavFileSink(path)) as tee:
                run = await pipe.speak("One two three. Four five.", tee)
    audible = run.timeline.first("sink.audible")
    print(json.dumps({
        "metrics": run.metrics.as_dict(), "data": None if audible is None else audible.data
    }))

anyio.run(main, sys.argv[2], sys.argv[3], backend=sys.argv[1])
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("sinks", ["playback", "tee", "file"])
def test_a_run_reports_when_it_was_heard_only_when_it_played(
    paced_device: PacedDevice, tmp_path: Path, backend: str, sinks: str
) -> None:
    report = run_script(RUN, backend, sinks, str(tmp_path / "out.wav"), env=paced_device.env)
    m = report["metrics"]
    assert m["ttfa_ms"] is not None and m["audio_ms"] > 400
    if sinks == "file":  # nothing played: nothing to report, not a guess
        assert m["audible_ms"] is None and m["output_latency_ms"] is None
        assert report["data"] is None
        return
    latency_ms = report["data"]["device_latency_s"] * 1000
    assert m["output_latency_ms"] == pytest.approx(m["audible_ms"] - m["ttfa_ms"])
    # At least the device's latency after the audio reached the sink, and not long after.
    assert latency_ms <= m["output_latency_ms"] < 1000
    assert m["audible_ms"] < m["total_ms"]
