"""Files: WAV streamed as audio arrives (valid at every moment), other formats through ffmpeg."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.abc

from voicepipe.audio.chunk import AudioChunk, Samples
from voicepipe.audio.joins import SinkFeed
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
