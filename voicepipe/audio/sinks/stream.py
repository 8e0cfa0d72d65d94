"""A sink that hands audio to a memory object stream: for HTTP responses and other consumers."""

from __future__ import annotations

import anyio

from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.null import NullSink


class StreamSink:
    """A sink that hands each chunk to a memory object stream an HTTP response reads.

    A small buffer gives backpressure: a slow client slows its own pipeline, nobody else's.
    ``buffered_seconds`` follows a real-time clock (the client plays as audio arrives), so
    adaptive chunking grows chunks as it would in front of speakers.
    """

    def __init__(self, buffer: int = 8) -> None:
        if buffer < 1:
            raise ValueError("StreamSink needs a buffer of at least one chunk")
        self._send, self.audio = anyio.create_memory_object_stream[AudioChunk](buffer)
        self._clock = NullSink(realtime=True)

    async def start(self) -> None:
        pass

    async def write(self, chunk: AudioChunk) -> None:
        await self._send.send(chunk)
        await self._clock.write(chunk)

    async def finish(self) -> None:
        self._send.close()

    async def abort(self) -> None:
        self._send.close()

    @property
    def seconds(self) -> float:
        """Audio written so far."""
        return self._clock.seconds

    def buffered_seconds(self) -> float:
        return self._clock.buffered_seconds()

    def take_underruns(self) -> list[tuple[float, float]]:
        return self._clock.take_underruns()
