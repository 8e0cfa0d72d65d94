"""The bounded audio queue between the TTS stage and the sink: backpressure, never drops."""

from __future__ import annotations

from collections import deque

import anyio

from voicepipe.audio.chunk import AudioChunk


class AudioQueue:
    """FIFO of audio chunks bounded in seconds and in chunks.

    ``put`` waits while the queue is full (a single chunk longer than the capacity is still
    accepted when the queue is empty, so nothing can deadlock). Closing the producer side ends
    the consumer's ``async for`` once drained; closing the consumer side makes ``put`` raise
    ``anyio.BrokenResourceError``, as memory object streams do.
    """

    def __init__(self, max_seconds: float = 20.0, max_chunks: int = 256) -> None:
        if max_seconds <= 0 or max_chunks <= 0:
            raise ValueError("queue capacity must be positive")
        self.max_seconds = max_seconds
        self.max_chunks = max_chunks
        self._items: deque[AudioChunk] = deque()
        self._seconds = 0.0
        self._changed = anyio.Event()
        self._producer_closed = False
        self._consumer_closed = False

    @property
    def seconds(self) -> float:
        """Seconds of audio waiting in the queue."""
        return self._seconds

    def __len__(self) -> int:
        return len(self._items)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _full_for(self, chunk: AudioChunk) -> bool:
        if not self._items:
            return False
        return (
            len(self._items) >= self.max_chunks or self._seconds + chunk.duration > self.max_seconds
        )

    def offer(self, chunk: AudioChunk) -> bool:
        """Append a chunk if it fits now; False if the queue is full (nothing is dropped)."""
        if self._consumer_closed:
            raise anyio.BrokenResourceError
        if self._producer_closed:
            raise anyio.ClosedResourceError
        if self._full_for(chunk):
            return False
        self._items.append(chunk)
        self._seconds += chunk.duration
        self._notify()
        return True

    async def put(self, chunk: AudioChunk) -> None:
        """Append a chunk, waiting while the queue is full."""
        while not self.offer(chunk):
            await self._changed.wait()

    async def get(self) -> AudioChunk:
        """Take the oldest chunk; raise ``anyio.EndOfStream`` once closed and drained."""
        while not self._items:
            if self._producer_closed:
                raise anyio.EndOfStream
            if self._consumer_closed:
                raise anyio.ClosedResourceError
            await self._changed.wait()
        chunk = self._items.popleft()
        self._seconds = max(0.0, self._seconds - chunk.duration) if self._items else 0.0
        self._notify()
        return chunk

    def close_producer(self) -> None:
        """No more chunks will be put; the consumer drains what is left."""
        self._producer_closed = True
        self._notify()

    def close_consumer(self) -> None:
        """Nothing will be read any more; a waiting or later ``put`` raises."""
        self._consumer_closed = True
        self._items.clear()
        self._seconds = 0.0
        self._notify()

    def __aiter__(self) -> AudioQueue:
        return self

    async def __anext__(self) -> AudioChunk:
        try:
            return await self.get()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None
