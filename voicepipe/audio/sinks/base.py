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

    async def start(self) -> None:
        """Open the device or file before any work.

        :raises NoDevice: there is no output device at all (playback).
        :raises AudioError: the device or path cannot be opened, or an encoder is missing.
        """
        ...

    async def write(self, chunk: AudioChunk) -> None:
        """Take one chunk, waiting while the sink's own buffer is full.

        :raises AudioError: the device stopped playing, or the file cannot be written.
        """
        ...

    async def finish(self) -> None:
        """Play or write out everything taken, then close.

        :raises AudioError: the device stalled or the file could not be finalized.
        """
        ...

    async def abort(self) -> None:
        """Stop at once and close; what was written stays valid. Never raises."""
        ...

    def buffered_seconds(self) -> float: ...
    def take_underruns(self) -> list[tuple[float, float]]: ...

    # Optional, not part of the protocol (sinks written before it still qualify): a sink that
    # plays may also offer ``take_audible() -> Event | None``, when the run's first sample left
    # the speaker; the sink stage adds it to the timeline (see PlaybackSink, TeeSink).
