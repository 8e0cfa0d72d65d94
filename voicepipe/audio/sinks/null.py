"""A sink that discards audio on a virtual playback clock: benchmarks, servers, tests."""

from __future__ import annotations

import time

from voicepipe.audio.chunk import AudioChunk


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
