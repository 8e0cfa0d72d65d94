"""Voice input: microphone capture, energy-based voice-activity detection, utterances.

``UtteranceDetector`` is the pure core: ``feed(samples)`` returns the utterances that ended in
those samples (a frame's level in dBFS against an adaptive noise floor decides speech). The
``Microphone`` captures mono int16 at 16 kHz through a sounddevice ``InputStream``; its
``Listener`` wraps both. While the assistant speaks, the listener either keeps listening with
a raised threshold (barge-in by voice: the level of the assistant's own voice picked up by the
microphone, measured as playback starts, plus a margin) or is paused (simple gating).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np
import numpy.typing as npt

from voicepipe.audio.chunk import Samples
from voicepipe.audio.devices import list_devices, portaudio, resolve
from voicepipe.audio.resample import Resampler
from voicepipe.errors import AudioError

__all__ = [
    "ECHO_HOLDOFF_S",
    "LISTEN_RATE",
    "Listener",
    "Microphone",
    "UtteranceDetector",
    "VoiceActivity",
    "input_devices",
    "resolve_input_device",
]

LISTEN_RATE = 16000  # what transcription services want; the detector works at any rate
ECHO_HOLDOFF_S = 0.3  # after the assistant spoke, before listening again
NO_MICROPHONE = "no microphone found; chat without --listen and type"
_SILENT_DBFS = -100.0  # the level of digital silence (log of zero, clamped)


@dataclass(frozen=True)
class VoiceActivity:
    """When the detector calls a stretch of audio an utterance.

    A frame is speech when its level is ``margin_db`` above the noise floor (the quietest
    frame of the last ``floor_window_ms``: speech has pauses, steady noise has none) and
    above ``min_dbfs``. An utterance starts after ``start_ms`` of speech frames in a row (so clicks
    do not count), keeps ``preroll_ms`` of audio from before that, and ends after ``end_ms`` of
    non-speech, keeping ``tail_ms`` of it; one longer than ``max_ms`` is cut there.

    While the assistant speaks (``UtteranceDetector.begin_echo``), the loudest frame of the
    first ``echo_measure_ms`` of its voice as the microphone hears it is taken as its level
    (its voice arrives with the output and input latency: the measure starts at the first
    frame heard as speech, or after ``echo_wait_ms`` if none is, e.g. with headphones; nothing
    starts meanwhile); speech must then be ``echo_margin_db`` above that, for
    ``echo_start_ms`` in a row, so only a user speaking louder or closer interrupts.
    """

    frame_ms: float = 20.0
    start_ms: float = 100.0
    end_ms: float = 600.0
    preroll_ms: float = 300.0
    tail_ms: float = 200.0
    max_ms: float = 30000.0
    margin_db: float = 12.0
    min_dbfs: float = -50.0
    floor_window_ms: float = 3000.0
    echo_wait_ms: float = 500.0
    echo_measure_ms: float = 200.0
    echo_margin_db: float = 12.0
    echo_start_ms: float = 200.0


def level_dbfs(frame: npt.NDArray[np.int16]) -> float:
    """The RMS level of int16 samples in dB relative to full scale (silence: -100)."""
    if len(frame) == 0:
        return _SILENT_DBFS
    rms = math.sqrt(float(np.mean(np.square(frame, dtype=np.float64))))
    if rms <= 0:
        return _SILENT_DBFS
    return max(_SILENT_DBFS, 20 * math.log10(rms / 32768))


class UtteranceDetector:
    """Cuts a stream of mono int16 samples into utterances, by energy; pure and synchronous.

    The output does not depend on how the input is cut into ``feed`` calls. The noise floor
    is a running minimum of the frame levels, so it drops at once in a pause and rises to a
    new steady noise (a fan starting) within ``floor_window_ms``. ``begin_echo``/``end_echo``
    bracket the assistant's playback (see ``VoiceActivity``); they take effect from the next
    whole frame.
    """

    def __init__(self, sample_rate: int = LISTEN_RATE, vad: VoiceActivity | None = None) -> None:
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        self.sample_rate = sample_rate
        self.vad = vad or VoiceActivity()
        self.frame = max(1, round(sample_rate * self.vad.frame_ms / 1000))
        self.noise_floor_dbfs = _SILENT_DBFS
        self._frame_count = 0
        # (frame number, level), levels increasing: the front is the window's minimum
        self._minima: deque[tuple[int, float]] = deque()
        self._rest = np.zeros(0, np.int16)
        self._preroll: deque[npt.NDArray[np.int16]] = deque(
            maxlen=self._frames_for(
                max(self.vad.preroll_ms, self.vad.start_ms, self.vad.echo_start_ms)
            )
        )
        self._utterance: list[npt.NDArray[np.int16]] = []
        self._speech_run = 0
        self._silence_run = 0
        self.echo_dbfs: float | None = None  # the assistant's voice at the microphone, if playing
        self._echo_wait = 0  # frames still to wait for the assistant's voice to arrive
        self._echo_measure = 0  # frames of it still to measure before listening

    @property
    def hearing_echo(self) -> bool:
        """Whether the assistant is speaking (between ``begin_echo`` and ``end_echo``)."""
        return self.echo_dbfs is not None

    def begin_echo(self) -> None:
        """The assistant starts to speak: measure its voice's level, then raise the threshold."""
        self.echo_dbfs = _SILENT_DBFS
        self._echo_wait = math.ceil(self.vad.echo_wait_ms / self.vad.frame_ms)
        self._echo_measure = self._frames_for(self.vad.echo_measure_ms)
        self._speech_run = 0

    def end_echo(self) -> None:
        """The assistant stopped speaking: the usual threshold and onset again."""
        self.echo_dbfs = None
        self._echo_wait = self._echo_measure = 0

    def _frames_for(self, ms: float) -> int:
        return max(1, math.ceil(ms / self.vad.frame_ms))

    @property
    def in_utterance(self) -> bool:
        return bool(self._utterance)

    def reset(self) -> None:
        """Forget the audio in progress (the noise floor stays)."""
        self._rest = np.zeros(0, np.int16)
        self._preroll.clear()
        self._utterance = []
        self._speech_run = self._silence_run = 0

    def feed(self, samples: npt.NDArray[np.int16]) -> list[Samples]:
        """Take the next samples; return the utterances that ended in them, in order."""
        data = np.concatenate([self._rest, np.asarray(samples, np.int16).reshape(-1)])
        whole = len(data) // self.frame * self.frame
        self._rest = data[whole:]
        out: list[Samples] = []
        for start in range(0, whole, self.frame):
            done = self._frame(data[start : start + self.frame])
            if done is not None:
                out.append(done)
        return out

    def flush(self) -> list[Samples]:
        """End of input: the utterance in progress, if one had started."""
        if self._rest.size and self._utterance:
            self._utterance.append(self._rest)
        self._rest = np.zeros(0, np.int16)
        if not self._utterance:
            return []
        utterance = self._finish(keep_silence=self._silence_run)
        return [utterance]

    def _frame(self, frame: npt.NDArray[np.int16]) -> Samples | None:
        vad = self.vad
        level = level_dbfs(frame)
        self._track_floor(level)
        threshold = max(self.noise_floor_dbfs + vad.margin_db, vad.min_dbfs)
        start_ms = vad.start_ms
        if self.echo_dbfs is not None and self._echo_measure:
            if self._echo_wait and level < threshold:
                self._echo_wait -= 1  # the assistant's voice has not reached the microphone
            else:
                self._echo_wait = 0
                self._echo_measure -= 1
                self.echo_dbfs = max(self.echo_dbfs, level)
            if not self._utterance:
                self._preroll.append(frame)
                self._speech_run = 0
                return None
        elif self.echo_dbfs is not None:
            threshold = max(threshold, self.echo_dbfs + vad.echo_margin_db)
            start_ms = max(start_ms, vad.echo_start_ms)
        speech = level >= threshold
        if not self._utterance:
            self._preroll.append(frame)
            if not speech:
                self._speech_run = 0
                return None
            self._speech_run += 1
            if self._speech_run >= self._frames_for(start_ms):
                keep = self._frames_for(max(vad.preroll_ms, start_ms))
                self._utterance = list(self._preroll)[-keep:]
                self._preroll.clear()
                self._silence_run = 0
            return None
        self._utterance.append(frame)
        self._silence_run = 0 if speech else self._silence_run + 1
        if self._silence_run >= self._frames_for(vad.end_ms):
            return self._finish(keep_silence=self._silence_run)
        if len(self._utterance) >= self._frames_for(vad.max_ms):
            return self._finish(keep_silence=0)
        return None

    def _finish(self, keep_silence: int) -> Samples:
        drop = max(0, keep_silence - self._frames_for(self.vad.tail_ms))
        frames = self._utterance[: len(self._utterance) - drop]
        self._utterance = []
        self._speech_run = self._silence_run = 0
        return np.concatenate(frames) if frames else np.zeros(0, np.int16)

    def _track_floor(self, level: float) -> None:
        self._frame_count += 1
        while self._minima and self._minima[-1][1] >= level:
            self._minima.pop()
        self._minima.append((self._frame_count, level))
        oldest = self._frame_count - self._frames_for(self.vad.floor_window_ms)
        while self._minima[0][0] <= oldest:
            self._minima.popleft()
        self.noise_floor_dbfs = self._minima[0][1]


def _sounddevice() -> Any:
    return portaudio(f"{NO_MICROPHONE} (PortAudio is not installed)")


def input_devices() -> list[dict[str, Any]]:
    """PortAudio's input devices: index, name, channels, default rate, and which is default."""
    return list_devices("input", f"{NO_MICROPHONE} (PortAudio is not installed)")


def resolve_input_device(device: str | int | None) -> int | None:
    """Turn ``--input-device`` (index, or part of a name) into a PortAudio index; fail clearly."""
    return resolve(device, input_devices(), "input", NO_MICROPHONE)


class Microphone:
    """Mono int16 blocks at ``LISTEN_RATE`` from an input device, while open.

    The PortAudio callback only appends each block to a bounded deque (thread-safe, never
    blocks); ``blocks()`` drains it once per block period. If the consumer falls more than
    ``max_buffer_s`` behind, the oldest audio is dropped and counted in ``dropped_blocks``.
    Blocks captured while ``paused`` are discarded.
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
        self._blocks: deque[npt.NDArray[np.int16]] = deque(
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
        sd = _sounddevice()
        index = resolve_input_device(self.device)
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
        self._blocks.append(np.array(indata[:, 0], dtype=np.int16))

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
        period = self.block_ms / 1000
        next_at = time.perf_counter()
        while True:
            while self._blocks:
                block = self._blocks.popleft()
                if self._resampler is not None:
                    block = self._resampler.process(block)
                if block.size:
                    yield block
            next_at = max(next_at + period, time.perf_counter())
            await anyio.sleep(next_at - time.perf_counter())


class Listener:
    """Utterances from a microphone: ``await listener.next_utterance()``.

    While the assistant speaks, either ``pause()`` (simple gating: nothing is captured) or
    ``hear_echo()`` then, as its audio starts, ``playback_started()``: capture goes on with
    the detector's raised threshold, and ``wait_for_speech()`` returns as the user starts to
    talk over it (barge-in by voice). ``resume(holdoff_s)`` starts detection over, ignoring the
    first ``holdoff_s`` of audio captured (after an answer: the room's echo of its last words,
    ``ECHO_HOLDOFF_S``); ``playback_ended(holdoff_s)`` does the same unless the user is already
    speaking, whose utterance then goes on, pre-roll included, to ``next_utterance()``.
    """

    def __init__(self, microphone: Microphone, vad: VoiceActivity | None = None) -> None:
        self.microphone = microphone
        self.detector = UtteranceDetector(LISTEN_RATE, vad)
        self._ignore = 0  # samples still to skip after resume
        self._ready: deque[Samples] = deque()

    def pause(self) -> None:
        self.microphone.paused = True

    def resume(self, holdoff_s: float = 0.0) -> None:
        self.microphone.discard()
        self.detector.reset()
        self.detector.end_echo()
        self._ready.clear()
        self._ignore = round(holdoff_s * LISTEN_RATE)
        self.microphone.paused = False

    def hear_echo(self) -> None:
        """An answer begins: keep listening (for a barge-in), from a clean start."""
        self.resume()

    def playback_started(self) -> None:
        """The answer's audio starts: measure its echo, then listen above it."""
        if not self.detector.hearing_echo:
            self.detector.begin_echo()

    def playback_ended(self, holdoff_s: float = 0.0) -> None:
        """The answer ended: back to the usual threshold, keeping an utterance under way."""
        if self.detector.in_utterance or self._ready:
            self.detector.end_echo()
            self.microphone.paused = False
        else:
            self.resume(holdoff_s)

    async def wait_for_speech(self) -> None:
        """Return as soon as an utterance starts (it stays in the detector, to be finished)."""
        async with aclosing(self.microphone.blocks()) as blocks:
            async for block in blocks:
                self._take(block)
                if self._ready or self.detector.in_utterance:
                    return

    def _take(self, block: Samples) -> None:
        if self._ignore:
            skip = min(self._ignore, len(block))
            self._ignore -= skip
            block = block[skip:]
        self._ready.extend(self.detector.feed(block))

    async def next_utterance(self) -> Samples:
        """Wait for the next complete utterance (16 kHz mono int16)."""
        if self._ready:
            return self._ready.popleft()
        async with aclosing(self.microphone.blocks()) as blocks:
            async for block in blocks:
                self._take(block)
                if self._ready:
                    return self._ready.popleft()
        raise AudioError("the microphone stopped")  # pragma: no cover - blocks() never ends
