"""The sink interface. Every sink is driven the same way by the pipeline's sink stage:

``start()`` before the LLM request (so a bad path or a missing device fails before any work),
``write()`` per chunk in order, then ``finish()`` on a normal end or ``abort()`` on an error or
cancellation. ``abort`` keeps what was already written valid and stops playback at once.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from voicepipe.audio.chunk import AudioChunk


@runtime_checkable
class AudioSink(Protocol):
    """The interface every sink implements (see the module docstring for the call order)."""

    async def start(self) -> None: ...
    async def write(self, chunk: AudioChunk) -> None: ...
    async def finish(self) -> None: ...
    async def abort(self) -> None: ...
    def buffered_seconds(self) -> float: ...
    def take_underruns(self) -> list[tuple[float, float]]: ...
