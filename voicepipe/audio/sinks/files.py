"""Files: WAV streamed as audio arrives (valid at every moment), other formats streamed
through an ffmpeg process as they arrive (memory flat, however long the answer)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import IO

import anyio
import anyio.abc
import anyio.lowlevel

from voicepipe.audio.chunk import AudioChunk, Samples
from voicepipe.audio.joins import SinkFeed
from voicepipe.audio.sinks.paths import (
    check_bitrate,
    check_encoder,
    check_writable,
    new_file_mode,
    private_temp,
)
from voicepipe.audio.wav import WavWriter
from voicepipe.errors import AudioError, ConfigError


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


# Extension -> (ffmpeg container, codec; None: the container's default).
ENCODED_FORMATS: dict[str, tuple[str, str | None]] = {
    ".mp3": ("mp3", None),
    ".ogg": ("ogg", "libopus"),
    ".opus": ("ogg", "libopus"),
    ".flac": ("flac", None),
    ".m4a": ("ipod", "aac"),
}

_STALL_S = 30.0  # ffmpeg taking no audio (or not finishing) this long has hung
# What ffmpeg says when the disk fails; the error then reads as a WAV's would.
_DISK_ERRORS = tuple(os.strerror(e) for e in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT, errno.EIO))
# Where /dev/fd/N names this process's open file N (Linux, macOS, the BSDs).
_DEV_FD = os.path.isdir("/dev/fd")


class EncodedFileSink:
    """MP3/OGG/FLAC/M4A, encoded by ffmpeg while the audio arrives.

    The samples go to an ``ffmpeg`` process's stdin as they come, so memory stays flat however
    long the answer (a 30-minute file takes what a 3-second one does) and the file is done
    moments after the last chunk. ffmpeg writes a temporary file made by :func:`private_temp`
    (a name nobody can guess, created afresh, owner-only) next to the target, through a
    descriptor this process opened (never by its name, so a symlink planted in the folder is
    never followed); the finished file replaces the target in one rename. An interrupted or
    failed run closes ffmpeg's input as a finished one does, so what was said is kept in a
    valid file; a run with no audio leaves none. ffmpeg runs in its own session, so a Ctrl-C
    on the terminal reaches only voicepipe, which then ends the file properly.
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
        self.sample_rate: int | None = None  # the first chunk's; later ones are resampled
        self._feed = SinkFeed(None, smooth=smooth_joins, pause_ms=pause_ms)
        self._staged: Path | None = None  # made by start()
        self._fd: int | None = None  # the staged file, open: ffmpeg writes through it
        self._encoder: anyio.abc.Process | None = None  # started by the first audio
        self._log: IO[bytes] | None = None  # ffmpeg's stderr: an anonymous temporary file
        self._frames = 0
        self._done = False

    @property
    def seconds(self) -> float:
        return self._frames / self.sample_rate if self.sample_rate else 0.0

    async def start(self) -> None:
        check_encoder(self.path)
        check_writable(self.path)
        staged = private_temp(self.path, ".partial")
        try:
            self._fd = os.open(staged, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            staged.unlink(missing_ok=True)
            raise AudioError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self._staged = staged

    def _command(self, rate: int, output: str) -> list[str]:
        command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar"]
        command += [str(rate), "-ac", "1", "-i", "pipe:0"]
        if self.codec is not None:
            command += ["-c:a", self.codec]
        if self.bitrate is not None:
            command += ["-b:a", self.bitrate]
        return [*command, "-f", self.format, "-y", output]

    async def _open(self, rate: int) -> anyio.abc.Process:
        if self._fd is None or self._done:
            raise AudioError(f"writing {self.path} before the sink started or after it ended")
        self.sample_rate = rate
        self._log = tempfile.TemporaryFile()
        # /dev/fd/N opens the file this process holds, whatever its name now points to.
        output = f"/dev/fd/{self._fd}" if _DEV_FD else str(self._staged)
        try:
            return await anyio.open_process(
                self._command(rate, output),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self._log,
                pass_fds=(self._fd,),
                start_new_session=True,
            )
        except OSError as exc:
            raise AudioError(f"cannot start ffmpeg to encode {self.path}: {exc}") from exc

    async def _append(self, samples: Samples) -> None:
        if len(samples) == 0:
            return
        encoder = self._encoder
        if encoder is None:
            with anyio.CancelScope(shield=True):  # a process half-started is one leaked
                encoder = self._encoder = await self._open(self._feed.sample_rate or 22050)
        assert encoder is not None  # (a shielded scope never swallows an error)
        stdin = encoder.stdin
        assert stdin is not None
        # Shielded: a send cut short by cancellation would leave half a sample in the pipe
        # and misalign the rest; ffmpeg takes a chunk in milliseconds.
        with anyio.CancelScope(shield=True), anyio.move_on_after(_STALL_S) as stalled:
            try:
                await stdin.send(samples.astype("<i2", copy=False).tobytes())
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                raise await self._failed() from None
        if stalled.cancelled_caught:
            raise await self._failed("it stopped taking audio")
        self._frames += len(samples)
        await anyio.lowlevel.checkpoint_if_cancelled()  # the shield held a cancellation back

    async def write(self, chunk: AudioChunk) -> None:
        if self._fd is None:
            raise AudioError(f"writing {self.path} before the sink started")
        await self._append(self._feed.feed(chunk))

    async def finish(self) -> None:
        await self._end(self._feed.flush())

    async def abort(self) -> None:
        await self._end(self._feed.flush())  # keep the last few ms too, then a valid file

    async def _end(self, tail: Samples) -> None:
        """Close ffmpeg's input, wait for it to finish the file, and publish it (if any audio
        was written). Shielded: an interrupted run still gets its file."""
        if self._done or self._fd is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                await self._append(tail)
                if self._encoder is not None:
                    await self._wait()
                await anyio.to_thread.run_sync(self._publish)
            finally:
                self._done = True
                await self._release()

    async def _wait(self) -> None:
        assert self._encoder is not None and self._encoder.stdin is not None
        try:
            await self._encoder.stdin.aclose()
        except (anyio.BrokenResourceError, OSError):
            pass  # it has already stopped: its exit status says how
        with anyio.move_on_after(_STALL_S):
            status = await self._encoder.wait()
            if status == 0:
                return
            raise await self._failed()
        raise await self._failed("it did not finish the file")

    def _publish(self) -> None:
        assert self._fd is not None and self._staged is not None
        if self._frames == 0:
            return  # no audio, no file (as a WAV aborted before any audio)
        try:
            os.fchmod(self._fd, new_file_mode(self.path))
            os.replace(self._staged, self.path)
        except OSError as exc:
            raise AudioError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self._staged = None

    async def _failed(self, why: str | None = None) -> AudioError:
        """The error for an encoder that stopped: ffmpeg's own last word, or ``why``."""
        self._done = True
        if self._encoder is not None and why is None:
            with anyio.move_on_after(5):  # it is exiting: let it finish its message
                await self._encoder.wait()
        reason = why or self._reason()
        await self._release()
        for disk in _DISK_ERRORS:
            if disk in reason:
                return AudioError(f"writing {self.path} failed: {disk}")
        return AudioError(f"encoding {self.path} with ffmpeg failed: {reason}")

    def _reason(self) -> str:
        """ffmpeg's stderr, last line first (its final error is the most specific)."""
        if self._log is None:
            return "ffmpeg stopped"
        self._log.seek(0)
        text = self._log.read()[-4096:].decode("utf-8", errors="replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if self._fd is not None:
            lines = [line.replace(f"/dev/fd/{self._fd}", self.path.name) for line in lines]
        status = None if self._encoder is None else self._encoder.returncode
        if lines:
            return lines[-1]
        if status is not None and status < 0:
            if -status == getattr(signal, "SIGXFSZ", None):  # over the file size limit
                return os.strerror(errno.EFBIG)
            return f"ffmpeg was killed by {signal.Signals(-status).name}"
        return f"ffmpeg exited with status {status}"

    async def _release(self) -> None:
        """Stop ffmpeg if it still runs, close what is open, and remove the temporary file
        unless it was published."""
        encoder, self._encoder = self._encoder, None
        if encoder is not None:
            if encoder.returncode is None:
                encoder.kill()
            await encoder.aclose()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._staged is not None:
            self._staged.unlink(missing_ok=True)
            self._staged = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def buffered_seconds(self) -> float:
        return 0.0

    def take_underruns(self) -> list[tuple[float, float]]:
        return []


def supported_formats() -> str:
    return ", ".join([".wav", *ENCODED_FORMATS])


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
