"""Echo cancellation: take the assistant's own voice out of the microphone.

The assistant knows what it played and when: ``PlayedAudio`` keeps that reference on one
clock with the capture (``time.perf_counter`` seconds, from PortAudio's DAC and ADC times),
and ``EchoCanceller`` subtracts its echo from each captured block with Speex's adaptive
filter (the ``pyaec`` wheel, in the ``listen`` extra). The filter learns the room's echo
path as the assistant speaks and keeps it between answers.

The reference is read ``lead_ms`` ahead of the capture time, so small errors in the two
devices' latency estimates keep the echo inside the filter (a filter only models echoes that
come after their reference): echo delays from ``-lead_ms`` to ``filter_ms - lead_ms`` are
cancelled.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import numpy as np
import numpy.typing as npt

from voicepipe.audio.chunk import Samples
from voicepipe.audio.resample import Resampler
from voicepipe.errors import MissingModel
from voicepipe.voice.base import LISTEN_RATE

FRAME = LISTEN_RATE // 100  # Speex works on 10 ms frames
PENDING_S = 2.0  # played audio kept for the listener to read, at most
JITTER_S = 0.05  # how far a block's reported time may stray from where its stream was


def installed() -> bool:
    """Whether the echo canceller's library (``pyaec``) is installed."""
    try:
        import pyaec  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


class PlayedAudio:
    """What the speakers played, by time: the echo canceller's reference.

    The playback callback calls ``played`` (from PortAudio's thread: it only appends); the
    listener calls ``take`` for the reference that lines up with a captured block. Audio is
    kept at ``LISTEN_RATE`` in a ring of ``keep_s`` seconds; a sample's position is its time
    times the rate, so blocks that follow each other in playback follow each other here.
    """

    def __init__(self, keep_s: float = 30.0) -> None:
        self._size = int(keep_s * LISTEN_RATE)
        self._ring = np.zeros(self._size, np.int16)
        self._end: int | None = None  # the position just past the newest sample written
        self._pending: deque[tuple[npt.NDArray[np.int16], int, float]] = deque()
        self._pending_s = 0.0
        self._lock = threading.Lock()
        self._resampler: Resampler | None = None
        self._resampler_rate = 0
        self._next_at: float | None = None  # when the next block of the stream would start

    def played(self, samples: npt.NDArray[np.int16], sample_rate: int, at: float) -> None:
        """``samples`` (mono) reach the speaker from ``at`` on (perf_counter seconds).

        Blocks wait here until the listener reads; past ``PENDING_S`` of them (a listener
        that stopped reading, a device that is not paced) the oldest are dropped.
        """
        block = np.array(samples, np.int16).reshape(-1)
        with self._lock:
            self._pending.append((block, sample_rate, at))
            self._pending_s += len(block) / sample_rate
            while len(self._pending) > 1 and self._pending_s > PENDING_S:
                old, rate, _ = self._pending.popleft()
                self._pending_s -= len(old) / rate

    def _drain(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, deque()
            self._pending_s = 0.0
        for samples, rate, at in pending:
            start = round(at * LISTEN_RATE)
            # Blocks of one stream follow each other; their times wobble with the callback's
            # scheduling (tens of ms on a busy machine or a paced file device), so within
            # ``JITTER_S`` the output goes on where the last ended (the resampler may hold
            # some of it back); past it (a new stream, a stall) it starts again at ``at``.
            follows = self._next_at is not None and abs(at - self._next_at) <= JITTER_S
            if rate != self._resampler_rate:
                self._resampler = None if rate == LISTEN_RATE else Resampler(rate, LISTEN_RATE)
                self._resampler_rate = rate
            if follows and self._end is not None:
                start = self._end
                at = self._next_at if self._next_at is not None else at
            self._next_at = at + len(samples) / rate
            audio = samples if self._resampler is None else self._resampler.process(samples)
            self._write(start, audio)

    def _write(self, start: int, audio: npt.NDArray[np.int16]) -> None:
        if self._end is not None and start > self._end:
            self._zero(self._end, min(start, self._end + self._size))  # nothing played between
        audio = audio[-self._size :]
        start = max(start, start + len(audio) - self._size)
        index = (start + np.arange(len(audio))) % self._size
        self._ring[index] = audio
        self._end = start + len(audio) if self._end is None else max(self._end, start + len(audio))

    def _zero(self, start: int, end: int) -> None:
        self._ring[(start + np.arange(end - start)) % self._size] = 0

    def take(self, at: float, n: int) -> Samples:
        """The ``n`` samples played from ``at`` on (zeros where nothing was)."""
        self._drain()
        out = np.zeros(n, np.int16)
        if self._end is None:
            return out
        start = round(at * LISTEN_RATE)
        lo, hi = max(start, self._end - self._size), min(start + n, self._end)
        if lo < hi:
            out[lo - start : hi - start] = self._ring[np.arange(lo, hi) % self._size]
        return out


class EchoCanceller:
    """Subtracts the echo of ``played`` audio from captured blocks (Speex MDF, 16 kHz).

    ``process(block, at)`` returns the cleaned block and the reference lined up with it
    (both ``LISTEN_RATE``); ``at`` is the capture time of the block's first sample. Blocks of
    any length are cut into 10 ms frames; a remainder waits for the next block, so the
    output may lag the input by less than one frame.
    """

    def __init__(
        self, played: PlayedAudio, *, filter_ms: float = 200.0, lead_ms: float = 20.0
    ) -> None:
        try:
            from pyaec import Aec
        except (ImportError, OSError) as exc:
            raise MissingModel(
                "echo cancellation needs pyaec: pip install 'voicepipe[listen]'",
                kind="echo canceller",
                package="voicepipe[listen]",
            ) from exc
        self.played = played
        self.lead_s = lead_ms / 1000
        self._filter = round(filter_ms / 1000 * LISTEN_RATE)
        self._aec: Any = Aec(FRAME, self._filter, LISTEN_RATE, False)
        self._quiet = self._filter + 1  # samples since the reference was last non-zero
        self._rest = np.zeros(0, np.int16)
        self._rest_at = 0.0

    def process(self, block: npt.NDArray[np.int16], at: float) -> tuple[Samples, Samples]:
        if not self._rest.size:
            self._rest_at = at
        data = np.concatenate([self._rest, np.asarray(block, np.int16).reshape(-1)])
        start_at = self._rest_at
        whole = len(data) // FRAME * FRAME
        self._rest = data[whole:]
        self._rest_at = start_at + whole / LISTEN_RATE
        reference = self.played.take(start_at + self.lead_s, whole)
        cleaned = data[:whole].copy()
        for i in range(0, whole, FRAME):
            mic, ref = data[i : i + FRAME], reference[i : i + FRAME]
            self._quiet = 0 if ref.any() else self._quiet + FRAME
            if self._quiet <= self._filter:  # an echo of what was played may still come
                cleaned[i : i + FRAME] = self._aec.cancel_echo(mic.tolist(), ref.tolist())
            # else nothing was played for a whole filter's length: nothing to cancel, and
            # the filter is left as it learnt the room
        return cleaned, reference
