"""Where audio goes: speakers, files, nowhere (benchmarks), or several at once.

Every sink is driven the same way by the pipeline: ``start()`` before the LLM request (so a
bad path or a missing device fails before any work), ``write()`` per chunk in order, then
``finish()`` on a normal end or ``abort()`` on an error or cancellation. ``abort`` keeps what
was already written valid and stops playback at once.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol, runtime_checkable

import anyio
import anyio.abc

from voicepipe.audio.chunk import AudioChunk, Samples
from voicepipe.audio.joins import SinkFeed
from voicepipe.audio.queue import AudioQueue
from voicepipe.audio.resample import resample
from voicepipe.audio.wav import WavWriter
from voicepipe.errors import AudioError, ConfigError


@runtime_checkable
class AudioSink(Protocol):
    """The interface every sink implements (see the module docstring for the call order)."""

    async def start(self) -> None: ...
    async def write(self, chunk: AudioChunk) -> None: ...
    async def finish(self) -> None: ...
    async def abort(self) -> None: ...
    def buffered_seconds(self) -> float: ...
    def take_underruns(self) -> list[tuple[float, float]]: ...


def convert_rate(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    """Resample once, at the sink boundary, with a proper band-limited resampler (soxr)."""
    if from_rate == to_rate:
        return samples
    return resample(samples, from_rate, to_rate)


class NullSink:
    """Discards audio, but keeps a virtual playback clock so benchmarks see underruns.

    With ``realtime=True`` the sink plays audio on paper: each chunk starts when the previous
    one ends, or when it arrives if that is later; the difference is an underrun.
    """

    def __init__(self, realtime: bool = True) -> None:
        self.realtime = realtime
        self.seconds = 0.0
        self._play_end: float | None = None
        self._underruns: list[tuple[float, float]] = []

    async def start(self) -> None:
        pass

    async def write(self, chunk: AudioChunk) -> None:
        self.seconds += chunk.duration
        if not self.realtime:
            return
        now = time.perf_counter()
        if self._play_end is not None and now > self._play_end:
            self._underruns.append((self._play_end, now - self._play_end))
        self._play_end = max(now, self._play_end or now) + chunk.duration

    async def finish(self) -> None:
        pass

    async def abort(self) -> None:
        pass

    def buffered_seconds(self) -> float:
        if self._play_end is None:
            return 0.0
        return max(0.0, self._play_end - time.perf_counter())

    def take_underruns(self) -> list[tuple[float, float]]:
        out, self._underruns = self._underruns, []
        return out


class WavFileSink:
    """Streams audio into a WAV file that is valid at every moment, even after a crash.

    The file's rate is ``sample_rate`` or the first chunk's; other rates are resampled. Samples
    are written exactly as the engine made them unless ``smooth_joins`` (fades where chunks
    start or stop abruptly, as ``PlaybackSink`` plays them); ``pause_ms`` of silence go between
    text chunks. Disk writes run on a worker thread so a slow disk never stalls the event loop.
    A run that fails before any audio leaves no file behind.
    """

    def __init__(
        self,
        path: str | Path,
        sample_rate: int | None = None,
        *,
        smooth_joins: bool = False,
        pause_ms: float = 0.0,
    ) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self._feed = SinkFeed(sample_rate, smooth=smooth_joins, pause_ms=pause_ms)
        self._writer: WavWriter | None = None
        self._closed = False

    @property
    def seconds(self) -> float:
        return 0.0 if self._writer is None else self._writer.seconds

    async def start(self) -> None:
        check_writable(self.path)

    def _open(self, rate: int) -> WavWriter:
        try:
            return WavWriter(self.path, rate)
        except OSError as exc:
            raise AudioError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    async def _append(self, samples: Samples) -> None:
        if self._writer is None:
            self.sample_rate = self._feed.sample_rate or self.sample_rate or 22050
            self._writer = self._open(self.sample_rate)
        if len(samples) == 0:
            return
        try:
            await anyio.to_thread.run_sync(self._writer.write, samples)
        except OSError as exc:
            raise AudioError(f"writing {self.path} failed: {exc.strerror or exc}") from exc

    async def write(self, chunk: AudioChunk) -> None:
        await self._append(self._feed.feed(chunk))

    async def finish(self) -> None:
        # An answer with no audio still gets a valid (empty) file: the user asked for one.
        await self._append(self._feed.flush())
        self._close()

    async def abort(self) -> None:
        if self._writer is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                await self._append(self._feed.flush())  # keep the last few ms too
            finally:
                self._close()
        if self._writer.frames == 0:
            self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except OSError as exc:  # the last flush failed (disk full); the header still holds
                raise AudioError(f"writing {self.path} failed: {exc.strerror or exc}") from exc

    def buffered_seconds(self) -> float:
        return 0.0

    def take_underruns(self) -> list[tuple[float, float]]:
        return []


# Extension -> (ffmpeg container, codec) for pydub's export.
ENCODED_FORMATS: dict[str, tuple[str, str | None]] = {
    ".mp3": ("mp3", None),
    ".ogg": ("ogg", "libopus"),
    ".opus": ("ogg", "libopus"),
    ".flac": ("flac", None),
    ".m4a": ("ipod", "aac"),
}


class EncodedFileSink:
    """MP3/OGG/FLAC/M4A: streams into a temporary WAV, encodes with pydub and ffmpeg at the end.

    An interrupted run still encodes what it had, so audio already produced is kept.
    """

    def __init__(
        self,
        path: str | Path,
        bitrate: str | None = None,
        *,
        smooth_joins: bool = False,
        pause_ms: float = 0.0,
    ) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in ENCODED_FORMATS:
            raise ConfigError(f"unsupported audio format {suffix!r}: use {supported_formats()}")
        self.format, self.codec = ENCODED_FORMATS[suffix]
        self.bitrate = check_bitrate(bitrate, suffix)
        self._wav = WavFileSink(
            self.path.with_name(f".{self.path.name}.partial.wav"),
            smooth_joins=smooth_joins,
            pause_ms=pause_ms,
        )

    @property
    def seconds(self) -> float:
        return self._wav.seconds

    async def start(self) -> None:
        check_encoder(self.path)
        check_writable(self.path)
        await self._wav.start()

    async def write(self, chunk: AudioChunk) -> None:
        await self._wav.write(chunk)

    async def _encode(self) -> None:
        tmp = self._wav.path
        if not tmp.exists():
            return
        try:
            if self._wav.seconds > 0:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._encode_sync, tmp)
        finally:
            tmp.unlink(missing_ok=True)

    def _encode_sync(self, tmp: Path) -> None:
        from pydub import AudioSegment

        staged = self.path.with_name(f".{self.path.name}.partial")
        try:
            segment = AudioSegment.from_wav(str(tmp))
            segment.export(str(staged), format=self.format, codec=self.codec, bitrate=self.bitrate)
            os.replace(staged, self.path)
        except Exception as exc:
            staged.unlink(missing_ok=True)
            # pydub's message holds the whole ffmpeg command and log: keep its first and last line
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or ["?"]
            reason = lines[0] if len(lines) == 1 else f"{lines[0]} ({lines[-1]})"
            raise AudioError(f"encoding {self.path} with ffmpeg failed: {reason}") from exc

    async def finish(self) -> None:
        await self._finish_wav(self._wav.finish)
        await self._encode()

    async def abort(self) -> None:
        await self._finish_wav(self._wav.abort)
        await self._encode()

    async def _finish_wav(self, end: Callable[[], Awaitable[None]]) -> None:
        try:
            await end()
        except AudioError:
            self._wav.path.unlink(missing_ok=True)  # the disk failed: do not encode onto it
            raise

    def buffered_seconds(self) -> float:
        return 0.0

    def take_underruns(self) -> list[tuple[float, float]]:
        return []


def supported_formats() -> str:
    return ", ".join([".wav", *ENCODED_FORMATS])


def check_encoder(path: Path) -> None:
    """Fail clearly if writing ``path`` needs ffmpeg and it is not on the PATH."""
    if path.suffix.lower() != ".wav" and shutil.which("ffmpeg") is None:
        raise AudioError(
            f"writing {path.suffix} files needs ffmpeg, which is not on the PATH: install it "
            "(apt-get install ffmpeg) or write a .wav file instead"
        )


def check_writable(path: Path) -> None:
    """Fail before any work if ``path`` cannot be created, with the reason."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise AudioError(f"cannot write {path}: folder {parent} does not exist")
    if path.is_dir():
        raise AudioError(f"cannot write {path}: it is a folder")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise AudioError(f"cannot write {path}: permission denied")


LOSSY = (".mp3", ".ogg", ".opus", ".m4a")
_BITRATE = re.compile(r"[1-9][0-9]{0,5}k?")


def check_bitrate(bitrate: str | None, suffix: str) -> str | None:
    """``bitrate`` as ffmpeg takes it (e.g. ``64k``), or a ConfigError that says what fits."""
    if bitrate is None:
        return None
    if suffix.lower() not in LOSSY:
        raise ConfigError(
            f"a bitrate applies to lossy formats ({', '.join(LOSSY)}), not {suffix or 'this file'}"
        )
    value = bitrate.strip().lower()
    if not _BITRATE.fullmatch(value):
        raise ConfigError(f"bad bitrate {bitrate!r}: give bits per second, e.g. 64k or 128000")
    return value


def file_sink(
    path: str | Path,
    *,
    bitrate: str | None = None,
    smooth_joins: bool = False,
    pause_ms: float = 0.0,
) -> WavFileSink | EncodedFileSink:
    """The file sink for ``path``'s extension (.wav natively, others through ffmpeg)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".wav":
        check_bitrate(bitrate, suffix)
        return WavFileSink(p, smooth_joins=smooth_joins, pause_ms=pause_ms)
    if suffix in ENCODED_FORMATS:
        return EncodedFileSink(p, bitrate=bitrate, smooth_joins=smooth_joins, pause_ms=pause_ms)
    raise ConfigError(
        f"cannot tell the audio format of {str(path)!r} from its extension: "
        f"use one of {supported_formats()}"
    )


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
