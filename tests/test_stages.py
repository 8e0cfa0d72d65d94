"""Each pipeline stage alone: given inputs in, what comes out, what the run recorded."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import TypeVar

import anyio
import numpy as np
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from tests.engines import ToneTTS
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.queue import AudioQueue
from voicepipe.audio.sinks.null import NullSink
from voicepipe.errors import ProviderError
from voicepipe.events import AudioPlayed, StageFailed, TextChunk
from voicepipe.run import Run
from voicepipe.stages import RealtimeFactor, sink_stage, text_stage, tts_stage
from voicepipe.text.sentences import SentenceBuffer
from voicepipe.text.speech import SpeechNormalizer

pytestmark = pytest.mark.anyio

In = TypeVar("In")
Out = TypeVar("Out")
Stage = Callable[[MemoryObjectReceiveStream[In], MemoryObjectSendStream[Out]], Awaitable[None]]


async def run_stage(stage: Stage[In, Out], inputs: Sequence[In]) -> list[Out]:
    """Feed ``inputs`` to a stage over memory object streams; return everything it sent."""
    in_send, in_recv = anyio.create_memory_object_stream[In](len(inputs) + 1)
    out_send, out_recv = anyio.create_memory_object_stream[Out](1024)
    for item in inputs:
        in_send.send_nowait(item)
    in_send.close()
    with anyio.fail_after(5):
        async with out_recv:
            await stage(in_recv, out_send)
            return [item async for item in out_recv]


async def deltas_of(
    parts: Sequence[str], fail_after: int | None = None
) -> AsyncGenerator[str, None]:
    for i, part in enumerate(parts):
        if fail_after is not None and i == fail_after:
            raise ProviderError("the model went away", provider="test")
        yield part


async def test_text_stage_cuts_deltas_into_numbered_speech_chunks() -> None:
    run = Run()

    async def stage(
        inp: MemoryObjectReceiveStream[str], out: MemoryObjectSendStream[TextChunk]
    ) -> None:
        async def deltas() -> AsyncGenerator[str, None]:
            async for d in inp:
                yield d

        await text_stage(
            run, deltas(), out, SentenceBuffer("sentence"), normalizer=SpeechNormalizer()
        )

    out = await run_stage(stage, ["**Hello** th", "ere. How are", " you? Fine."])
    assert [(c.index, c.text) for c in out] == [
        (0, "Hello there."),
        (1, "How are you?"),
        (2, "Fine."),
    ]
    assert run.answer == "**Hello** there. How are you? Fine."
    assert run.chunks == ["Hello there.", "How are you?", "Fine."]
    assert run.error is None


async def test_text_stage_keeps_what_came_before_an_llm_failure() -> None:
    run = Run()

    async def stage(
        inp: MemoryObjectReceiveStream[str], out: MemoryObjectSendStream[TextChunk]
    ) -> None:
        await text_stage(
            run,
            deltas_of(["One. Two", " words", " lost"], fail_after=2),
            out,
            SentenceBuffer("sentence"),
        )

    out = await run_stage(stage, [])
    assert [c.text for c in out] == ["One.", "Two words"]  # flushed, then spoken
    assert isinstance(run.error, ProviderError)
    assert run.timeline.first("error") is not None


async def test_tts_stage_synthesizes_in_order_and_closes_the_queue() -> None:
    run = Run()
    queue = AudioQueue(60)
    speed = RealtimeFactor(initial=1.0)
    chunks = [TextChunk(0, "one two"), TextChunk(1, "three")]

    async def stage(
        inp: MemoryObjectReceiveStream[TextChunk], out: MemoryObjectSendStream[AudioChunk]
    ) -> None:
        async with out:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: tts_stage(run, ToneTTS(delay=0.01), inp, queue, speed=speed))
                async for audio in queue:  # ends when the stage closes the producer side
                    await out.send(audio)

    out = await run_stage(stage, chunks)
    assert [a.text_index for a in out] == [0, 0, 1, 1]  # two pieces per chunk, in order
    assert speed.value < 1.0  # the tone engine is far faster than real time
    assert [e.data["index"] for e in run.timeline.events if e.name == "tts.done"] == [0, 1]


async def test_tts_stage_drains_the_text_after_a_failure() -> None:
    run = Run()
    queue = AudioQueue(60)
    chunks = [TextChunk(i, f"chunk {i}") for i in range(5)]

    async def stage(
        inp: MemoryObjectReceiveStream[TextChunk], out: MemoryObjectSendStream[AudioChunk]
    ) -> None:
        async with out:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: tts_stage(run, ToneTTS(fail_at_index=2), inp, queue))
                async for audio in queue:
                    await out.send(audio)

    out = await run_stage(stage, chunks)
    assert sorted({a.text_index for a in out}) == [0, 1]
    assert isinstance(run.error, ProviderError)


async def test_sink_stage_writes_in_order_and_reports_each_chunk() -> None:
    run = Run()
    events_send, events_recv = anyio.create_memory_object_stream[object](100)
    run._emit = events_send  # type: ignore[assignment]
    queue = AudioQueue(60)
    sink = NullSink(realtime=False)
    pieces = [AudioChunk(np.full(160, i + 1, dtype=np.int16), 16000, i) for i in range(3)]
    for piece in pieces:
        await queue.put(piece)
    queue.close_producer()
    cues = 0

    def cue() -> None:
        nonlocal cues
        cues += 1

    with anyio.fail_after(5):
        await sink_stage(run, queue, sink, on_audio=cue)
    events_send.close()
    played = [e async for e in events_recv]
    chunks = [e.chunk for e in played if isinstance(e, AudioPlayed)]
    assert len(chunks) == 3 and all(a is b for a, b in zip(chunks, pieces, strict=True))
    assert cues == 3 and sink.seconds == pytest.approx(0.03)
    assert run.audio_seconds == pytest.approx(0.03)


class RecordingSink(NullSink):
    def __init__(self) -> None:
        super().__init__(realtime=False)
        self.ended = ""

    async def finish(self) -> None:
        self.ended = "finish"

    async def abort(self) -> None:
        self.ended = "abort"


async def test_sink_stage_aborts_when_the_run_failed_before_any_audio() -> None:
    run = Run()
    run.fail("llm", ProviderError("nothing came", provider="test"))
    queue = AudioQueue(60)
    queue.close_producer()
    sink = RecordingSink()
    with anyio.fail_after(5):
        await sink_stage(run, queue, sink)
    assert sink.ended == "abort"  # no empty file left behind


async def test_run_fail_keeps_the_first_error_and_reports_each() -> None:
    run = Run()
    events_send, events_recv = anyio.create_memory_object_stream[object](10)
    run._emit = events_send  # type: ignore[assignment]
    first, second = ProviderError("first"), ProviderError("second")
    run.fail("llm", first)
    run.fail("tts", second)
    events_send.close()
    reported = [e async for e in events_recv]
    assert run.error is first
    assert [(e.stage, e.error) for e in reported if isinstance(e, StageFailed)] == [
        ("llm", first),
        ("tts", second),
    ]
