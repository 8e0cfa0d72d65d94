"""The microphone: mono int16 at 16 kHz through a sounddevice ``InputStream``."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import anyio
import numpy as np
import numpy.typing as npt

from voicepipe.audio.chunk import Samples
from voicepipe.audio.devices import portaudio, resolve
from voicepipe.audio.resample import Resampler, convert_rate
from voicepipe.errors import AudioError
from voicepipe.voice.base import LISTEN_RATE


def captured_at(time_info: Any, duration_s: float) -> float:
    """When a PortAudio input block's first sample was captured, on ``time.perf_counter``.

    PortAudio stamps the block with its ADC time on the stream's clock; the gap to the
    stream's current time carries over to ours. Without stamps (some host APIs give zeros)
    the block is taken to have just ended.
    """
    now = time.perf_counter()
    adc, current = (
        getattr(time_info, "inputBufferAdcTime", 0.0),
        getattr(time_info, "currentTime", 0.0),
    )
    if adc and current and 0.0 <= current - adc < 1.0:
        return now - (current - adc)
    return now - duration_s


class Microphone:
    """Mono int16 blocks at ``LISTEN_RATE`` from an input device, while open.

    The PortAudio callback only appends each block to a bounded deque (thread-safe, never
    blocks); ``blocks()`` drains it once per block period. If the consumer falls more than
    ``max_buffer_s`` behind, the oldest audio is dropped and counted in ``dropped_blocks``.
    Blocks captured while ``paused`` are discarded. ``timed_blocks()`` also gives each
    block's capture time (``time.perf_counter`` seconds, from PortAudio's ADC time), which
    lines it up with what was played (echo cancellation).
    """

    def __init__(
        self, device: str | int | None = None, *, block_ms: float = 20.0, max_buffer_s: float = 10.0
    ) -> None:
        self.device = device
        self.block_ms = block_ms
        self.max_buffer_s = max_buffer_s
        self.paused = False
        self.dropped_blocks = 0
        self.sample_rate = LISTEN_RATE  # the device's rate once open
        self._blocks: deque[tuple[float, npt.NDArray[np.int16]]] = deque(
            maxlen=max(1, math.ceil(max_buffer_s * 1000 / block_ms))
        )
        self._stream: Any = None
        self._resampler: Resampler | None = None

    async def __aenter__(self) -> Microphone:
        await anyio.to_thread.run_sync(self._open)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await anyio.to_thread.run_sync(self._close)

    def _open(self) -> None:
        sd = portaudio("input")
        index = resolve(self.device, "input")
        rate = LISTEN_RATE
        try:
            sd.check_input_settings(device=index, channels=1, dtype="int16", samplerate=rate)
        except Exception:
            info = sd.query_devices(index, "input")
            rate = int(info["default_samplerate"])
        self.sample_rate = rate
        self._resampler = Resampler(rate, LISTEN_RATE) if rate != LISTEN_RATE else None
        blocksize = max(1, round(rate * self.block_ms / 1000))
        try:
            self._stream = sd.InputStream(
                device=index,
                channels=1,
                dtype="int16",
                samplerate=rate,
                blocksize=blocksize,
                callback=self._capture,
            )
            self._stream.start()
        except Exception as exc:
            self._stream = None
            raise AudioError(f"cannot open the microphone: {exc}") from exc

    def _capture(self, indata: Any, frames: int, when: Any, status: Any) -> None:
        """The PortAudio callback (its own thread): keep a copy of the block, never block."""
        if self.paused:
            return
        if len(self._blocks) == self._blocks.maxlen:
            self.dropped_blocks += 1
        self._blocks.append(
            (captured_at(when, frames / self.sample_rate), np.array(indata[:, 0], dtype=np.int16))
        )

    def _close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.abort()
                self._stream.close()
            except Exception:  # already gone: nothing left to release
                pass
            self._stream = None

    def discard(self) -> None:
        """Drop the audio captured but not yet read (e.g. the end of the assistant's speech)."""
        self._blocks.clear()

    async def blocks(self) -> AsyncGenerator[Samples, None]:
        """The captured audio, block by block, at ``LISTEN_RATE``; runs until cancelled."""
        async with aclosing(self.timed_blocks()) as blocks:
            async for _, block in blocks:
                yield block

    async def timed_blocks(self) -> AsyncGenerator[tuple[float, Samples], None]:
        """``(capture time of the first sample, block)`` pairs, as ``blocks()``."""
        period = self.block_ms / 1000
        next_at = time.perf_counter()
        while True:
            while self._blocks:
                at, block = self._blocks.popleft()
                if self._resampler is not None:
                    block = self._resampler.process(block)
                if block.size:
                    yield at, block
            next_at = max(next_at + period, time.perf_counter())
            await anyio.sleep(max(0.0, next_at - time.perf_counter()))


class RecordedMicrophone(Microphone):
    """A microphone that hears recorded audio: ``play`` feeds it in real time, block by block.

    The blocks enter exactly as the PortAudio callback's would (paused blocks are dropped),
    so a listener on it runs its real code; for benchmarks (``bench --voice``) and tests.
    """

    def __init__(self, *, block_ms: float = 20.0, max_buffer_s: float = 10.0) -> None:
        super().__init__(None, block_ms=block_ms, max_buffer_s=max_buffer_s)

    async def __aenter__(self) -> RecordedMicrophone:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def play(
        self,
        samples: npt.NDArray[np.int16],
        sample_rate: int = LISTEN_RATE,
        *,
        start_at: float | None = None,
    ) -> float:
        """Feed ``samples`` at their real pace, the first sample captured at ``start_at``
        (perf_counter; default now); return the time of the last block."""
        audio = convert_rate(np.asarray(samples, np.int16).reshape(-1), sample_rate, LISTEN_RATE)
        block = max(1, round(LISTEN_RATE * self.block_ms / 1000))
        period = self.block_ms / 1000
        started = time.perf_counter() if start_at is None else start_at
        last = started
        for i, start in enumerate(range(0, len(audio), block)):
            await anyio.sleep(max(0.0, started + (i + 1) * period - time.perf_counter()))
            if not self.paused:
                self._blocks.append((started + i * period, audio[start : start + block]))
            last = time.perf_counter()
        return last
