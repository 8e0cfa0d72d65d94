"""Where audio goes: speakers, files, nowhere (benchmarks), or several at once.

Every sink is driven the same way by the pipeline: ``start()`` before the LLM request (so a
bad path or a missing device fails before any work), ``write()`` per chunk in order, then
``finish()`` on a normal end or ``abort()`` on an error or cancellation. ``abort`` keeps what
was already written valid and stops playback at once.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

import anyio

from voicepipe.audio.chunk import AudioChunk, Samples
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

    The file's rate is that of the first chunk; later chunks at another rate are resampled.
    A run that fails before any audio leaves no file behind.
    """

    def __init__(self, path: str | Path, sample_rate: int | None = None) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self._writer: WavWriter | None = None

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

    async def write(self, chunk: AudioChunk) -> None:
        if self._writer is None:
            self.sample_rate = self.sample_rate or chunk.sample_rate
            self._writer = self._open(self.sample_rate)
        samples = convert_rate(chunk.samples, chunk.sample_rate, self._writer.sample_rate)
        try:
            self._writer.write(samples)
        except OSError as exc:
            raise AudioError(f"writing {self.path} failed: {exc.strerror or exc}") from exc

    async def finish(self) -> None:
        if self._writer is None:
            # An answer with no audio still gets a valid (empty) file: the user asked for one.
            self._writer = self._open(self.sample_rate or 22050)
        self._writer.close()

    async def abort(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        if self._writer.frames == 0:
            self.path.unlink(missing_ok=True)

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

    def __init__(self, path: str | Path, bitrate: str | None = None) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in ENCODED_FORMATS:
            raise ConfigError(f"unsupported audio format {suffix!r}: use {supported_formats()}")
        self.format, self.codec = ENCODED_FORMATS[suffix]
        self.bitrate = bitrate
        self._wav = WavFileSink(self.path.with_name(f".{self.path.name}.partial.wav"))

    @property
    def seconds(self) -> float:
        return self._wav.seconds

    async def start(self) -> None:
        if shutil.which("ffmpeg") is None:
            raise AudioError(
                f"writing {self.path.suffix} files needs ffmpeg: install it "
                "(apt-get install ffmpeg) or write a .wav file instead"
            )
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
            raise AudioError(f"encoding {self.path} with ffmpeg failed: {exc}") from exc

    async def finish(self) -> None:
        await self._wav.finish()
        await self._encode()

    async def abort(self) -> None:
        await self._wav.abort()
        await self._encode()

    def buffered_seconds(self) -> float:
        return 0.0

    def take_underruns(self) -> list[tuple[float, float]]:
        return []


def supported_formats() -> str:
    return ", ".join([".wav", *ENCODED_FORMATS])


def check_writable(path: Path) -> None:
    """Fail before any work if ``path`` cannot be created, with the reason."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise AudioError(f"cannot write {path}: folder {parent} does not exist")
    if path.is_dir():
        raise AudioError(f"cannot write {path}: it is a folder")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise AudioError(f"cannot write {path}: permission denied")


def file_sink(path: str | Path, *, bitrate: str | None = None) -> WavFileSink | EncodedFileSink:
    """The file sink for ``path``'s extension (.wav natively, others through ffmpeg)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".wav":
        return WavFileSink(p)
    if suffix in ENCODED_FORMATS:
        return EncodedFileSink(p, bitrate=bitrate)
    raise ConfigError(
        f"cannot tell the audio format of {str(path)!r} from its extension: "
        f"use one of {supported_formats()}"
    )


class TeeSink:
    """Feeds several sinks from one stream (e.g. speakers and a file)."""

    def __init__(self, *sinks: AudioSink) -> None:
        self.sinks = sinks

    async def start(self) -> None:
        for sink in self.sinks:
            await sink.start()

    async def write(self, chunk: AudioChunk) -> None:
        for sink in self.sinks:
            await sink.write(chunk)

    async def finish(self) -> None:
        for sink in self.sinks:
            await sink.finish()

    async def abort(self) -> None:
        for sink in self.sinks:
            await sink.abort()

    def buffered_seconds(self) -> float:
        return max((s.buffered_seconds() for s in self.sinks), default=0.0)

    def take_underruns(self) -> list[tuple[float, float]]:
        return [u for s in self.sinks for u in s.take_underruns()]
