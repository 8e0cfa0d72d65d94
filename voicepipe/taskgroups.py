"""Task-group helpers: what a caller should see when a task group fails."""

from __future__ import annotations

import asyncio
import sys

from voicepipe.errors import VoicepipeError

__all__ = ["single_error"]


def _cancellations() -> tuple[type[BaseException], ...]:
    """Every backend's cancellation class; needs no running event loop (unlike anyio's)."""
    classes: list[type[BaseException]] = [asyncio.CancelledError]
    trio = sys.modules.get("trio")
    if trio is not None:
        classes.append(trio.Cancelled)
    return tuple(classes)


def single_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one real error in a task group's exception group (cancellations aside), else the group.

    Task groups wrap even a single failure; callers want the VoicepipeError itself.
    """
    cancelled = _cancellations()
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        elif not isinstance(exc, cancelled):
            leaves.append(exc)

    walk(group)
    ours = [e for e in leaves if isinstance(e, VoicepipeError)]
    if len(leaves) == 1:
        return leaves[0]
    if ours and all(isinstance(e, VoicepipeError) for e in leaves):
        return ours[0]
    return group
