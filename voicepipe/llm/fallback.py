"""A chain of token sources (``--llm openai:gpt-4o-mini,local``): the next answers when one
cannot.

A source that fails before its first text (refused connection, timeout, a 5xx or 429 after
the transport's retries, a 401) hands the question to the next one in the chain. Once text
has come, a failure is the run's, as for a single source: the words already spoken cannot be
taken back, and another model would not continue them. Each answer tries the first source
again. The switch is stamped on the run's timeline (``fallback``) and reported to
``on_switch`` (the CLI prints it on stderr).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing

import anyio

from voicepipe import timeline as tl
from voicepipe.errors import ConfigError, ProviderError
from voicepipe.lifecycle import Lifecycle, aclose_all
from voicepipe.llm.base import Message, TokenSource
from voicepipe.taskgroups import single_error

__all__ = ["FallbackLLM"]


class FallbackLLM(Lifecycle):
    """``sources`` in order of preference, as one token source.

    All are prepared up front, so a fallback answers as soon as it is needed; one whose
    ``prepare`` fails with a ProviderError is left out (and reported), a ConfigError is
    raised as it would be for the source alone.
    """

    def __init__(
        self,
        sources: Sequence[TokenSource],
        *,
        on_switch: Callable[[str], None] | None = None,
    ) -> None:
        if len(sources) < 2:
            raise ConfigError("an LLM fallback chain needs at least two sources")
        self.sources = list(sources)
        self.name = ",".join(source.name for source in self.sources)
        self.on_switch = on_switch
        self._usable = list(range(len(self.sources)))

    def __repr__(self) -> str:
        return f"FallbackLLM({self.sources!r})"

    async def warm_up(self) -> None:
        """Warm each source that can (e.g. the embedded model's prompt cache), as bench does
        between runs."""
        for source in self.sources:
            warm_up = getattr(source, "warm_up", None)
            if warm_up is not None:
                await warm_up()

    async def prepare(self) -> None:
        failed: dict[int, ProviderError] = {}

        async def prepare(i: int) -> None:
            try:
                await self.sources[i].prepare()
            except ProviderError as exc:
                failed[i] = exc

        try:
            async with anyio.create_task_group() as tg:
                for i in range(len(self.sources)):
                    tg.start_soon(prepare, i)
        except BaseExceptionGroup as group:
            raise single_error(group) from None
        if len(failed) == len(self.sources):
            raise failed[0]
        self._usable = [i for i in range(len(self.sources)) if i not in failed]
        for i, exc in sorted(failed.items()):
            self._report(
                f"LLM {self.sources[i].name} could not start ({exc}); "
                f"{self.sources[self._usable[0]].name} answers instead"
            )

    async def aclose(self) -> None:
        await aclose_all(self.sources)

    def _report(self, message: str) -> None:
        if self.on_switch is not None:
            self.on_switch(message)

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        """The first source's answer that starts; later failures are raised as they are.

        :raises ProviderError: the last source failed too, or one failed after its first text.
        """
        for position, i in enumerate(self._usable):
            started = False
            try:
                async with aclosing(self.sources[i].stream(messages)) as deltas:
                    async for delta in deltas:
                        started = started or bool(delta)
                        yield delta
                return
            except ProviderError as exc:
                if started or position == len(self._usable) - 1:
                    raise
                old, new = self.sources[i].name, self.sources[self._usable[position + 1]].name
                timeline = tl.current()
                if timeline is not None:
                    timeline.mark(
                        tl.FALLBACK, stage="llm", index=None, failed=old, next=new, message=str(exc)
                    )
                self._report(f"LLM {old} failed before answering ({exc}); {new} answers instead")
