"""A tee: several sinks from one stream (speakers and a file), each at its own pace."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

import anyio
import anyio.abc

from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.queue import AudioQueue
from voicepipe.audio.sinks.base import AudioSink
from voicepipe.timeline import Event


@dataclass(eq=False)
class _Branch:
    """One sink of a tee, with the backlog it has not written yet."""

    sink: AudioSink
    queue: AudioQueue
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    done: anyio.Event = field(default_factory=anyio.Event)
    error: Exception | None = None
    closed: bool = False  # finished or aborted


class TeeSink:
    """Feeds several sinks from one stream (e.g. speakers and a file), each at its own pace.

    Used as ``async with TeeSink(a, b) as tee:`` around the run, every sink gets its own
    backlog (up to ``lag_seconds`` of audio) and its own task in a task group the tee owns, so
    a slow file cannot stall playback nor paced playback hold back the file; ``write`` returns
    once every sink has accepted the chunk into its backlog. Without ``async with`` the sinks
    are written concurrently, chunk by chunk. A failing sink is aborted (its file stays valid)
    and its error is raised by the tee's next ``write`` or ``finish``.
    """

    def __init__(self, *sinks: AudioSink, lag_seconds: float = 20.0) -> None:
        if not sinks:
            raise ValueError("a tee needs at least one sink")
        self.sinks = sinks
        self.lag_seconds = lag_seconds
        self._branches = [_Branch(s, AudioQueue(lag_seconds, 4096)) for s in sinks]
        self._tg: anyio.abc.TaskGroup | None = None
        self._started = False
        self._spawned = False
        self._closed = False

    async def __aenter__(self) -> TeeSink:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        if self._started:
            self._spawn()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg, self._tg = self._tg, None
        assert tg is not None
        if exc is None:
            if self._started and not self._closed:
                await self.abort()
            return await tg.__aexit__(None, None, None)
        # The caller failed: stop the sinks and let its exception through as it is (the
        # feeders never raise, so the task group has nothing of its own to report).
        try:
            if self._started and not self._closed:
                await self.abort()  # shielded
        finally:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
        return None

    def _spawn(self) -> None:
        assert self._tg is not None
        if not self._spawned:
            self._spawned = True
            for branch in self._branches:
                self._tg.start_soon(self._feed, branch)

    async def _feed(self, branch: _Branch) -> None:
        """One sink's task: write its backlog in order, then finish it."""
        try:
            with branch.scope:
                async for chunk in branch.queue:
                    await branch.sink.write(chunk)
                await branch.sink.finish()
                branch.closed = True
        except Exception as exc:
            if branch.scope.cancel_called:
                return  # aborted: the backlog was closed under it; abort() does the rest
            branch.error = exc
            branch.queue.close_consumer()
            with anyio.CancelScope(shield=True):
                await self._abort_one(branch)
        finally:
            branch.done.set()

    def _raise_failure(self) -> None:
        for branch in self._branches:
            if branch.error is not None:
                raise branch.error

    async def start(self) -> None:
        for sink in self.sinks:
            await sink.start()
        self._started = True
        if self._tg is not None:
            self._spawn()

    async def write(self, chunk: AudioChunk) -> None:
        self._raise_failure()
        if not self._spawned:
            await self._each(lambda b: b.sink.write(chunk))
            return
        full = [b for b in self._branches if b.error is None and not b.queue.offer(chunk)]
        if full:
            async with anyio.create_task_group() as tg:
                for branch in full:
                    tg.start_soon(self._put, branch, chunk)
        self._raise_failure()

    @staticmethod
    async def _put(branch: _Branch, chunk: AudioChunk) -> None:
        try:
            await branch.queue.put(chunk)
        except anyio.BrokenResourceError:
            pass  # the sink failed meanwhile; the tee raises its error

    async def finish(self) -> None:
        if not self._spawned:
            await self._each(self._finish_one)
        else:
            for branch in self._branches:
                if branch.error is None:
                    branch.queue.close_producer()
            for branch in self._branches:
                await branch.done.wait()
        self._closed = True
        self._raise_failure()

    async def abort(self) -> None:
        """Stop every sink at once: backlogs are dropped, each sink's own abort runs."""
        with anyio.CancelScope(shield=True):
            for branch in self._branches:
                branch.scope.cancel()
                branch.queue.close_consumer()
            if self._spawned:
                for branch in self._branches:
                    await branch.done.wait()
            self._closed = True
            await self._each(self._abort_one)

    @staticmethod
    async def _finish_one(branch: _Branch) -> None:
        await branch.sink.finish()
        branch.closed = True

    @staticmethod
    async def _abort_one(branch: _Branch) -> None:
        if not branch.closed:
            branch.closed = True
            await branch.sink.abort()

    async def _each(self, step: Callable[[_Branch], Awaitable[None]]) -> None:
        """Run ``step`` for every open sink concurrently; raise the first error it raised."""
        errors: list[Exception] = []

        async def guarded(branch: _Branch) -> None:
            try:
                await step(branch)
            except Exception as exc:
                errors.append(exc)
                if branch.error is None:
                    branch.error = exc

        branches = [b for b in self._branches if not b.closed]
        if len(branches) == 1:
            await guarded(branches[0])
        elif branches:
            async with anyio.create_task_group() as tg:
                for branch in branches:
                    tg.start_soon(guarded, branch)
        if errors:
            raise errors[0]

    def buffered_seconds(self) -> float:
        return max(
            (b.queue.seconds + b.sink.buffered_seconds() for b in self._branches if not b.error),
            default=0.0,
        )

    def take_underruns(self) -> list[tuple[float, float]]:
        return [u for s in self.sinks for u in s.take_underruns()]

    def take_audible(self) -> Event | None:
        """The earliest first sample heard from its sinks that play (``PlaybackSink``)."""
        heard = []
        for sink in self.sinks:
            take = getattr(sink, "take_audible", None)
            if take is not None and (event := take()) is not None:
                heard.append(event)
        return min(heard, key=lambda e: e.t, default=None)
