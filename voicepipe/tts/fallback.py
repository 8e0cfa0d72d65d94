"""A chain of TTS engines (``--tts piper,espeak``): when one fails, the next speaks on.

The chain is one engine to the pipeline. Each text chunk goes to the engine in use; if it
fails (a 5xx, a dropped stream, a crashed voice), the next engine in the chain speaks that
same chunk, and the rest of the answer. Nothing is said twice or skipped: a chunk's audio
is passed on only once its engine has finished the whole chunk, because a voice cannot
resume another's half-spoken sentence. That holds back streaming within a chunk (not
between chunks: the next chunk is synthesized while this one plays); the last engine in
the chain has nothing to fall back on, so it streams as a single engine does.

The switch lasts for the rest of the answer, so one answer keeps one voice once switched;
the next answer tries the first engine again. It is stamped on the run's timeline
(``fallback``) and reported to ``on_switch`` (the CLI prints it on stderr).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from contextvars import ContextVar

import anyio

from voicepipe import timeline as tl
from voicepipe.audio.chunk import AudioChunk
from voicepipe.errors import ConfigError, ProviderError
from voicepipe.lifecycle import Lifecycle, aclose_all
from voicepipe.taskgroups import single_error
from voicepipe.tts.base import TTSEngine

__all__ = ["FallbackTTS"]


class FallbackTTS(Lifecycle):
    """``engines`` in order of preference, as one TTS engine.

    An engine whose ``prepare`` fails with a ProviderError is left out of the chain (and
    reported); a ConfigError (a missing voice, a bad option) is raised, as it would be for
    the engine alone. ``sample_rate`` is the first engine's: sinks resample the others.
    """

    def __init__(
        self,
        engines: Sequence[TTSEngine],
        *,
        on_switch: Callable[[str], None] | None = None,
    ) -> None:
        if len(engines) < 2:
            raise ConfigError("a TTS fallback chain needs at least two engines")
        self.engines = list(engines)
        self.name = ",".join(engine.name for engine in self.engines)
        self.on_switch = on_switch
        self._usable = list(range(len(self.engines)))  # those that prepared
        self.sample_rate = self.engines[0].sample_rate
        # The engine in use for this task's answer: the pipeline's TTS stage is one task
        # per run, so a switch lasts for its answer and no longer, even with concurrent runs.
        self._in_use: ContextVar[int] = ContextVar(f"voicepipe_tts_fallback_{id(self)}")

    def __repr__(self) -> str:
        return f"FallbackTTS({self.engines!r})"

    @property
    def chars_per_second(self) -> float | None:
        """The first engine's speaking rate, if it measured one: it speaks unless it fails."""
        return getattr(self.engines[0], "chars_per_second", None)

    async def prepare(self) -> None:
        """Prepare every engine at once: a fallback must be ready the moment it is needed."""
        failed: dict[int, ProviderError] = {}

        async def prepare(i: int) -> None:
            try:
                await self.engines[i].prepare()
            except ProviderError as exc:
                failed[i] = exc

        try:
            async with anyio.create_task_group() as tg:
                for i in range(len(self.engines)):
                    tg.start_soon(prepare, i)
        except BaseExceptionGroup as group:
            raise single_error(group) from None
        if len(failed) == len(self.engines):
            raise failed[0]
        self._usable = [i for i in range(len(self.engines)) if i not in failed]
        self.sample_rate = self.engines[self._usable[0]].sample_rate  # known once loaded
        for i, exc in sorted(failed.items()):
            self._report(
                f"TTS {self.engines[i].name} could not start ({exc}); "
                f"{self.engines[self._usable[0]].name} speaks instead"
            )

    async def aclose(self) -> None:
        await aclose_all(self.engines)

    def _report(self, message: str) -> None:
        if self.on_switch is not None:
            self.on_switch(message)

    def _switch(self, failed: int, to: int, index: int, error: ProviderError) -> None:
        """Stamp and report that engine ``to`` takes over chunk ``index`` from ``failed``."""
        self._in_use.set(to)
        old, new = self.engines[failed].name, self.engines[to].name
        timeline = tl.current()
        if timeline is not None:
            timeline.mark(
                tl.FALLBACK, stage="tts", index=index, failed=old, next=new, message=str(error)
            )
        self._report(f"TTS {old} failed on chunk {index + 1} ({error}); {new} speaks from there")

    async def synthesize(self, text: str, text_index: int = 0) -> AsyncGenerator[AudioChunk, None]:
        """Speak ``text`` with the engine in use, falling back chunk-whole to the next ones.

        :raises ProviderError: the last engine failed too (what it said so far was yielded).
        """
        position = self._usable.index(self._in_use.get(self._usable[0]))
        while position < len(self._usable) - 1:
            i = self._usable[position]
            held: list[AudioChunk] = []
            try:
                async with aclosing(self.engines[i].synthesize(text, text_index)) as audio:
                    async for piece in audio:
                        held.append(piece)
            except ProviderError as exc:
                position += 1
                self._switch(i, self._usable[position], text_index, exc)
                continue
            for piece in held:
                yield piece
            return
        last = self.engines[self._usable[-1]]
        async with aclosing(last.synthesize(text, text_index)) as audio:
            async for piece in audio:
                yield piece
