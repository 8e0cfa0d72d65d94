"""The provider lifecycle: ``prepare`` loads what a provider needs, ``aclose`` releases it.

Every token source, TTS engine and transcriber has both (``Lifecycle`` gives no-op defaults),
so callers never probe with ``getattr``. ``prepare_all`` loads several at once; ``aclose_all``
releases them even while the caller is being cancelled.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

import anyio

from voicepipe.taskgroups import single_error

__all__ = ["Lifecycle", "Managed", "aclose_all", "prepare_all"]


class Managed(Protocol):
    """Anything with the provider lifecycle."""

    async def prepare(self) -> None: ...
    async def aclose(self) -> None: ...


Self = TypeVar("Self", bound="Lifecycle")


class Lifecycle:
    """No-op ``prepare``/``aclose`` for providers that load nothing and hold nothing.

    ``async with provider:`` prepares it and closes it at the end.
    """

    async def __aenter__(self: Self) -> Self:
        await self.prepare()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def prepare(self) -> None:
        """Load models, start servers, warm caches: anything the first request would pay for.

        :raises ConfigError: a model file or package is missing.
        :raises ProviderError: the provider could not be started.
        """

    async def aclose(self) -> None:
        """Release what ``prepare`` or the requests took: servers, threads, connections."""


async def prepare_all(parts: Iterable[Managed]) -> None:
    """``prepare`` every part concurrently; the first failure is raised as itself."""
    try:
        async with anyio.create_task_group() as tg:
            for part in parts:
                tg.start_soon(part.prepare)
    except BaseExceptionGroup as group:
        raise single_error(group) from None


async def aclose_all(parts: Iterable[Managed]) -> None:
    """``aclose`` every part, in order, shielded from cancellation so nothing is left open."""
    with anyio.CancelScope(shield=True):
        for part in parts:
            await part.aclose()
