"""single_error works with no event loop running: the CLI calls it after anyio.run returned."""

from __future__ import annotations

import asyncio

import pytest

from voicepipe.errors import ProviderError
from voicepipe.taskgroups import single_error


def test_the_one_real_error_is_found_after_the_loop_has_ended() -> None:
    error = ProviderError("the TTS failed", provider="tone")
    group = BaseExceptionGroup(
        "unhandled errors in a TaskGroup",
        [asyncio.CancelledError(), BaseExceptionGroup("inner", [error, asyncio.CancelledError()])],
    )
    assert single_error(group) is error  # no NoEventLoopError: no loop is asked


def test_a_command_failing_in_a_task_group_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import anyio

    from voicepipe.cli import _run

    async def failing(args: object) -> int:
        async def boom() -> None:
            raise ProviderError("the TTS failed", provider="tone")

        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.sleep_forever)
            tg.start_soon(boom)
        return 0

    class Args:
        needs_prompt = False
        is_async = True
        run = staticmethod(failing)

    with pytest.raises(ProviderError, match="the TTS failed"):
        _run(Args())  # type: ignore[arg-type]
