"""Playback through PortAudio (sounddevice): a callback-driven stream fed from a small buffer."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import numpy as np

from voicepipe.audio.chunk import AudioChunk, Samples
from voicepipe.audio.devices import portaudio, resolve
from voicepipe.audio.joins import SinkFeed
from voicepipe.errors import AudioError
from voicepipe.timeline import AUDIBLE, Event


def reaches_speaker_at(time_info: Any, stream: Any) -> tuple[float, bool]:
    """When an output block's first sample leaves the speaker, on ``time.perf_counter``, and
    whether PortAudio stamped it.

    PortAudio stamps the block with its DAC time on the stream's clock; the gap from the
    stream's current time carries over to ours. A DAC time of "now" (ALSA's plugins stamp so)
    or none at all (some host APIs give zeros) means the host API does not know its delay:
    the block still waits behind the device's buffer, which the stream's reported output
    latency stands for.
    """
    now = time.perf_counter()
    dac, current = (
        getattr(time_info, "outputBufferDacTime", 0.0),
        getattr(time_info, "currentTime", 0.0),
    )
    if dac and current and _NO_STAMP < dac - current < 1.0:
        return now + (dac - current), True
    latency = getattr(stream, "latency", 0.0)
    return now + (latency if isinstance(latency, float) else 0.0), False


_NO_STAMP = 0.0005  # seconds: a DAC time closer than this to the callback's is no stamp


class PlaybackSink:
    """Plays audio on an output device as it arrives, with no reopen between chunks.

    The device stream opens at the first chunk's rate (or the device's own rate, resampling
    once) and starts after ``preroll_ms`` of audio is buffered (a small jitter buffer). Joins
    between chunks are smoothed (a few ms of fade only where a chunk starts or stops
    abruptly) and ``pause_ms`` of silence go between text chunks. The callback counts
    underruns: silence inserted because audio ran dry before the end. ``write`` waits while
    more than ``max_buffer_s`` is buffered, so backpressure reaches the queue. ``abort`` fades
    out over ``fade_ms``, stops the device and releases it (within ~20 ms).

    ``on_played(samples, sample_rate, at)``, if given, hears every block as it goes to the
    device, with the time it reaches the speaker (``time.perf_counter`` seconds, from
    PortAudio's DAC time): the reference an echo canceller needs. It runs on PortAudio's
    thread, so it must only store the block.

    The first sample of the answer's audio (not the silence a dry buffer is padded with) is
    timed the same way: :meth:`take_audible` hands that time to the run's timeline, so a run
    reports when it was first heard, not only when its audio reached this sink.
    """

    def __init__(
        self,
        device: str | int | None = None,
        *,
        preroll_ms: float = 80.0,
        max_buffer_s: float = 0.5,
        fade_ms: float = 8.0,
        pause_ms: float = 0.0,
        smooth_joins: bool = True,
        clock: Callable[[], float] = time.perf_counter,
        stall_timeout_s: float = 2.0,
        on_played: Callable[[Samples, int, float], None] | None = None,
    ) -> None:
        self.device = device
        self.on_played = on_played
        self.stall_timeout_s = stall_timeout_s
        self.preroll_ms = preroll_ms
        self.max_buffer_s = max_buffer_s
        self.fade_ms = fade_ms
        self.pause_ms = pause_ms
        self.smooth_joins = smooth_joins
        self.sample_rate: int | None = None
        self.frames_played = 0
        self._clock = clock
        self._device_index: int | None = None
        self._stream: Any = None
        self._feed: SinkFeed | None = None
        self._blocks: deque[Samples] = deque()
        self._offset = 0  # read position inside _blocks[0]
        self._buffered = 0  # frames in _blocks not yet played
        self._lock = threading.Lock()
        self._started = False
        self._ending = False  # finish(): running dry now is the end, not an underrun
        self._fade_total = 0
        self._fade_left: int | None = None  # abort(): frames of fade-out still to play
        self._dry_since: float | None = None
        self._dry_frames = 0
        self._underruns: list[tuple[float, float]] = []
        # (DAC time, how far ahead of the callback, stamped by the host API) of the run's
        # first sample: set once on PortAudio's thread, taken on the loop's (under the lock).
        self._audible: tuple[float, float, bool] | None = None
        self._heard = False  # the run's first sample has gone to the device
        self._device_latency = 0.0  # the output latency the open stream reports, seconds

    async def start(self) -> None:
        self._device_index = resolve(self.device, "output")
        with self._lock:
            self._audible, self._heard = None, False  # a new run: its own first sample

    def _open(self, rate: int) -> None:
        """Open the device at ``rate`` in mono if it takes that, else at its own rate and
        channel count (audio is resampled once and copied to every channel)."""
        sd = portaudio("output")
        try:
            info = sd.query_devices(self._device_index, "output")
        except Exception as exc:
            raise AudioError(f"cannot open the audio output device: {exc}") from exc
        device_rate, channels = int(info["default_samplerate"]), 1
        for try_rate, try_channels in [
            (rate, 1),
            (rate, min(2, int(info["max_output_channels"]))),
            (device_rate, 1),
            (device_rate, min(2, int(info["max_output_channels"]))),
        ]:
            try:
                sd.check_output_settings(
                    device=self._device_index,
                    channels=try_channels,
                    dtype="int16",
                    samplerate=try_rate,
                )
            except Exception:
                continue
            device_rate, channels = try_rate, try_channels
            break
        try:
            self._stream = sd.OutputStream(
                samplerate=device_rate,
                channels=channels,
                dtype="int16",
                device=self._device_index,
                callback=self._callback,
                latency="low",
            )
        except Exception as exc:
            raise AudioError(f"cannot open the audio output device: {exc}") from exc
        latency = getattr(self._stream, "latency", 0.0)
        self._device_latency = latency if isinstance(latency, float) else 0.0
        self.sample_rate = device_rate
        self._feed = SinkFeed(device_rate, smooth=self.smooth_joins, pause_ms=self.pause_ms)

    # Runs on PortAudio's thread: no allocation-heavy work, no waiting on the event loop.
    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        out = outdata[:, 0]
        filled = 0
        with self._lock:
            while filled < frames and self._blocks:
                block = self._blocks[0]
                n = min(frames - filled, len(block) - self._offset)
                out[filled : filled + n] = block[self._offset : self._offset + n]
                filled += n
                self._offset += n
                if self._offset == len(block):
                    self._blocks.popleft()
                    self._offset = 0
            self._buffered -= filled
            self.frames_played += filled
            if filled < frames:
                out[filled:] = 0
                if not self._ending and self._fade_left is None:
                    if self._dry_since is None:
                        self._dry_since = self._clock()
                    self._dry_frames += frames - filled
            elif self._dry_since is not None:
                self._close_underrun()
            if self._fade_left is not None:
                n = min(self._fade_left, frames)
                if n > 0:
                    total = max(self._fade_total, 1)
                    ramp = np.linspace(self._fade_left / total, (self._fade_left - n) / total, n)
                    out[:n] = (out[:n] * ramp).astype(np.int16)
                out[n:] = 0
                self._fade_left -= n
        if outdata.shape[1] > 1:
            outdata[:, 1:] = outdata[:, :1]
        first = filled > 0 and not self._heard
        if first or self.on_played is not None:
            # The block's first sample is the first of what was filled: audio fills from 0.
            now = time.perf_counter()
            at, stamped = reaches_speaker_at(time_info, self._stream)
            if first:
                with self._lock:
                    self._audible, self._heard = (at, at - now, stamped), True
            if self.on_played is not None and self.sample_rate is not None:
                self.on_played(out.copy(), self.sample_rate, at)

    def _close_underrun(self) -> None:
        """Record the dry spell in progress (call with the lock held)."""
        if self._dry_since is not None:
            rate = self.sample_rate or 1
            self._underruns.append((self._dry_since, self._dry_frames / rate))
        self._dry_since, self._dry_frames = None, 0

    def buffered_seconds(self) -> float:
        rate = self.sample_rate or 1
        return self._buffered / rate

    def take_underruns(self) -> list[tuple[float, float]]:
        with self._lock:
            out, self._underruns = self._underruns, []
        return out

    def take_audible(self) -> Event | None:
        """When the first sample of the audio written since :meth:`start` reached the speaker,
        as an ``AUDIBLE`` event on ``time.perf_counter``'s clock; None if none has played yet.

        The sink stage adds it to the run's timeline once the sink is finished or aborted:
        the time is learnt on PortAudio's thread, which must not touch the timeline.
        """
        with self._lock:
            audible, self._audible = self._audible, None
        if audible is None:
            return None
        at, ahead, stamped = audible
        data = {"device_latency_s": self._device_latency, "ahead_s": ahead, "stamped": stamped}
        return Event(AUDIBLE, at, data)

    def _push(self, samples: Samples) -> None:
        if len(samples):
            with self._lock:
                self._blocks.append(samples)
                self._buffered += len(samples)

    async def write(self, chunk: AudioChunk) -> None:
        if self._stream is None:
            self._open(chunk.sample_rate)
        assert self.sample_rate is not None and self._feed is not None
        self._push(self._feed.feed(chunk))
        if not self._started and self._buffered >= self.preroll_ms * self.sample_rate / 1000:
            self._start_stream()
        # Backpressure: wait until the device has played the excess.
        await self._wait_while(
            lambda: self._started and self.buffered_seconds() > self.max_buffer_s,
            lambda: self.buffered_seconds() - self.max_buffer_s,
        )

    async def _wait_while(self, busy: Callable[[], bool], left: Callable[[], float]) -> None:
        """Sleep while ``busy()``, for as long as ``left()`` says the device needs each time.

        PortAudio's callback thread cannot wake the event loop without blocking, so the wait
        is computed rather than signalled. If the device stops consuming audio (unplugged, a
        dead stream) for ``stall_timeout_s``, fail instead of waiting forever.
        """
        played, progressed = self.frames_played, time.monotonic()
        while busy():
            await anyio.sleep(max(left(), 0.0) + 0.005)
            if self.frames_played != played:
                played, progressed = self.frames_played, time.monotonic()
            elif time.monotonic() - progressed > self.stall_timeout_s:
                raise AudioError(
                    "the audio output device stopped playing (unplugged?); "
                    "the audio so far is kept in any file being written (-o FILE)"
                )

    def _start_stream(self) -> None:
        try:
            self._stream.start()
        except Exception as exc:
            raise AudioError(f"cannot start audio playback: {exc}") from exc
        self._started = True

    async def finish(self) -> None:
        """Play out everything buffered, then release the device."""
        if self._stream is None:
            return
        assert self._feed is not None
        self._push(self._feed.flush())
        with self._lock:
            self._close_underrun()  # a dry spell up to now was an underrun; from now, the end
            self._ending = True
        try:
            if not self._started and self._buffered:
                self._start_stream()
            await self._wait_while(
                lambda: self._buffered > 0 and self._stream.active, self.buffered_seconds
            )
            # stop() returns once PortAudio's own buffers have played.
            await anyio.to_thread.run_sync(self._stream.stop)
        finally:
            await self._close()

    async def abort(self) -> None:
        """Stop within a few ms, with a short fade so there is no click; release the device."""
        if self._stream is None:
            return
        with anyio.CancelScope(shield=True):
            if self._started and self._stream.active:
                assert self.sample_rate is not None
                with self._lock:
                    self._fade_total = max(1, int(self.fade_ms * self.sample_rate / 1000))
                    self._fade_left = self._fade_total
                    self._ending = True
                    self._close_underrun()
                await anyio.sleep(self.fade_ms / 1000 + 0.002)
            # abort() drops what the device still holds instead of playing it (stop() would).
            await anyio.to_thread.run_sync(self._stream.abort)
            with self._lock:
                self._blocks.clear()
                self._buffered = 0
            await self._close()

    async def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(stream.close)
