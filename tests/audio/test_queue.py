from __future__ import annotations

import anyio
import numpy as np
import pytest

from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.queue import AudioQueue

pytestmark = pytest.mark.anyio


def chunk(seconds: float, index: int = 0, rate: int = 1000) -> AudioChunk:
    return AudioChunk(np.zeros(int(seconds * rate), np.int16), rate, index)


async def test_put_waits_while_full_and_nothing_is_dropped() -> None:
    queue = AudioQueue(max_seconds=1.0)
    received: list[int] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:

            async def produce() -> None:
                for i in range(10):
                    await queue.put(chunk(0.4, i))
                    assert queue.seconds <= 1.0 + 1e-9
                queue.close_producer()

            tg.start_soon(produce)
            await anyio.wait_all_tasks_blocked()
            # The producer is blocked on a full queue: two chunks fit, the third does not.
            assert len(queue) == 2
            async for item in queue:
                received.append(item.text_index)
    assert received == list(range(10))


async def test_a_chunk_longer_than_the_capacity_still_passes_when_empty() -> None:
    queue = AudioQueue(max_seconds=0.5)
    with anyio.fail_after(5):
        await queue.put(chunk(2.0))
        assert queue.seconds == pytest.approx(2.0)
        assert (await queue.get()).duration == pytest.approx(2.0)


async def test_chunk_count_limit() -> None:
    queue = AudioQueue(max_seconds=100, max_chunks=3)
    with anyio.fail_after(5):
        for i in range(3):
            await queue.put(chunk(0.01, i))
        async with anyio.create_task_group() as tg:
            tg.start_soon(queue.put, chunk(0.01, 3))
            await anyio.wait_all_tasks_blocked()
            assert len(queue) == 3  # the fourth waits, though 99.97 s of room are left
            assert (await queue.get()).text_index == 0  # taking one lets it in
        assert [c.text_index for c in [await queue.get() for _ in range(3)]] == [1, 2, 3]


async def test_closing_the_consumer_breaks_a_waiting_producer() -> None:
    queue = AudioQueue(max_seconds=0.1)
    with anyio.fail_after(5):
        await queue.put(chunk(0.1))
        async with anyio.create_task_group() as tg:

            async def produce() -> None:
                with pytest.raises(anyio.BrokenResourceError):
                    await queue.put(chunk(0.1))

            tg.start_soon(produce)
            await anyio.wait_all_tasks_blocked()
            queue.close_consumer()


async def test_end_of_stream_after_drain() -> None:
    queue = AudioQueue()
    with anyio.fail_after(5):
        await queue.put(chunk(0.1, 7))
        queue.close_producer()
        assert [c.text_index async for c in queue] == [7]
        with pytest.raises(anyio.EndOfStream):
            await queue.get()
