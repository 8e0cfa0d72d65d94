"""The tee: each sink at its own pace from its own bounded backlog; one failure surfaces."""

from __future__ import annotations

import wave
from pathlib import Path

import anyio
import numpy as np
import pytest

from tests.engines import ToneTTS, tone_for
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.files import WavFileSink
from voicepipe.audio.sinks.null import NullSink
from voicepipe.audio.sinks.tee import TeeSink
from voicepipe.errors import AudioError
from voicepipe.llm.text import TextSource
from voicepipe.pipeline import Pipeline

pytestmark = pytest.mark.anyio


def chunk(index: int, seconds: float = 0.1) -> AudioChunk:
    return AudioChunk(np.full(int(seconds * 1000), index + 1, np.int16), 1000, index)


class RecordingSink(NullSink):
    """Records what it is given; ``gate`` (when set) holds every write until it is set."""

    def __init__(self, gate: anyio.Event | None = None, fail_at: int | None = None) -> None:
        super().__init__(realtime=False)
        self.gate = gate
        self.fail_at = fail_at
        self.got: list[int] = []
        self.calls: list[str] = []

    async def write(self, chunk: AudioChunk) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if chunk.text_index == self.fail_at:
            raise AudioError("disk full")
        self.got.append(chunk.text_index)

    async def finish(self) -> None:
        self.calls.append("finish")

    async def abort(self) -> None:
        self.calls.append("abort")


@pytest.mark.parametrize("slow_first", [True, False])
async def test_a_stalled_sink_does_not_hold_back_the_other(slow_first: bool) -> None:
    gate = anyio.Event()
    slow, fast = RecordingSink(gate), RecordingSink()
    sinks = (slow, fast) if slow_first else (fast, slow)
    with anyio.fail_after(5):
        async with TeeSink(*sinks, lag_seconds=1.0) as tee:
            await tee.start()
            for i in range(8):
                await tee.write(chunk(i))  # returns although `slow` has written nothing
            await anyio.wait_all_tasks_blocked()
            assert fast.got == list(range(8)) and slow.got == []
            assert tee.buffered_seconds() == pytest.approx(0.7, abs=0.11)
            gate.set()
            await tee.finish()
    assert slow.got == fast.got == list(range(8))
    assert slow.calls == fast.calls == ["finish"]


async def test_the_backlog_is_bounded_and_nothing_is_dropped() -> None:
    gate = anyio.Event()
    slow, fast = RecordingSink(gate), RecordingSink()
    written = 0
    with anyio.fail_after(5):
        async with TeeSink(slow, fast, lag_seconds=0.35) as tee:
            await tee.start()
            async with anyio.create_task_group() as tg:

                async def produce() -> None:
                    nonlocal written
                    for i in range(10):
                        await tee.write(chunk(i))
                        written += 1

                tg.start_soon(produce)
                await anyio.wait_all_tasks_blocked()
                # slow is stuck writing chunk 0 with 1..3 in its backlog (0.35 s): full, so
                # the fifth write waits (fast already has its copy).
                assert written == 4 and fast.got == [0, 1, 2, 3, 4]
                gate.set()
            await tee.finish()
    assert slow.got == fast.got == list(range(10))


async def test_a_failing_sink_is_aborted_and_its_error_surfaces() -> None:
    bad, good = RecordingSink(fail_at=2), RecordingSink()
    with anyio.fail_after(5):
        async with TeeSink(bad, good) as tee:
            await tee.start()
            with pytest.raises(AudioError, match="disk full"):
                for i in range(6):
                    await tee.write(chunk(i))
                    await anyio.wait_all_tasks_blocked()
            await tee.abort()  # what the pipeline does when a write raises
    assert bad.got == [0, 1] and bad.calls == ["abort"]
    assert good.got == [0, 1, 2] and good.calls == ["abort"]


async def test_abort_stops_a_sink_stuck_in_write_and_drops_the_backlogs() -> None:
    gate = anyio.Event()  # never set: the sink hangs in write
    stuck, other = RecordingSink(gate), RecordingSink()
    with anyio.fail_after(5):
        async with TeeSink(stuck, other) as tee:
            await tee.start()
            for i in range(3):
                await tee.write(chunk(i))
            await tee.abort()
    assert stuck.got == [] and stuck.calls == ["abort"]
    assert other.calls == ["abort"]


async def test_leaving_the_block_without_finish_aborts() -> None:
    a = RecordingSink()
    with anyio.fail_after(5):
        with pytest.raises(RuntimeError):
            async with TeeSink(a) as tee:
                await tee.start()
                await tee.write(chunk(0))
                raise RuntimeError("the caller failed")
    assert a.calls == ["abort"]


async def test_without_async_with_the_sinks_are_written_together() -> None:
    a, b = RecordingSink(), RecordingSink()
    tee = TeeSink(a, b)
    with anyio.fail_after(5):
        await tee.start()
        for i in range(3):
            await tee.write(chunk(i))
        await tee.finish()
    assert a.got == b.got == [0, 1, 2] and a.calls == b.calls == ["finish"]


async def test_pipeline_through_a_tee_writes_the_same_audio_to_every_file(tmp_path: Path) -> None:
    text = "One sentence here. Another one there. And a third."
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    tts = ToneTTS()
    with anyio.fail_after(10):
        async with TeeSink(*(WavFileSink(p) for p in paths), NullSink()) as tee:
            run = await Pipeline(TextSource(0), tts, chunking="sentence").speak(text, tee)
    expected = np.concatenate([tone_for(c, 16000, tts.seconds_per_word) for c in run.chunks])
    for path in paths:
        with wave.open(str(path), "rb") as w:
            np.testing.assert_array_equal(
                np.frombuffer(w.readframes(w.getnframes()), "<i2"), expected
            )
