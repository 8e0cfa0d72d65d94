"""Voice activity: which frames are speech, and where an utterance starts and ends.

``UtteranceDetector`` is the pure core: ``feed(samples)`` returns the utterances that ended in
those samples (a frame's level in dBFS against an adaptive noise floor decides speech).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voicepipe.audio.chunk import Samples

LISTEN_RATE = 16000  # what speech-to-text wants; the detector works at any rate
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
