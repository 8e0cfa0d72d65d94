"""Helpers for LLM provider tests: drain a token source, inspect failures.

``collect`` and ``collect_until_error`` are bounded by ``TIMEOUT`` themselves, so a test that
only drains one source needs no ``fail_after`` of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing

import anyio

from tests.servers.llm import FakeLLM
from voicepipe.llm.base import Message, TokenSource
from voicepipe.transport.settings import RetryPolicy

TIMEOUT = 10.0  # seconds: bound for every async test
PROMPT: list[Message] = [{"role": "user", "content": "Why is the sky blue?"}]
# Retries that still happen, without the seconds of real backoff.
FAST_RETRY = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)


async def collect(source: TokenSource, messages: Sequence[Message] = PROMPT) -> list[str]:
    """All deltas ``source`` streams for ``messages``."""
    with anyio.fail_after(TIMEOUT):
        async with aclosing(source.stream(messages)) as deltas:  # type: ignore[type-var]
            return [delta async for delta in deltas]


async def collect_until_error(
    source: TokenSource, messages: Sequence[Message] = PROMPT
) -> tuple[list[str], BaseException]:
    """The deltas streamed before the stream failed, and the failure (the test fails if none)."""
    received: list[str] = []
    stream: AsyncIterator[str] = source.stream(messages)
    try:
        with anyio.fail_after(TIMEOUT):
            async with aclosing(stream):  # type: ignore[type-var]
                async for delta in stream:
                    received.append(delta)
    except TimeoutError:
        raise
    except Exception as exc:
        return received, exc
    raise AssertionError(f"the stream ended without an error after {received!r}")


def assert_secret_hidden(exc: BaseException, secret: str) -> None:
    """The secret appears nowhere in the exception, its causes or their contexts."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        for text in (str(current), repr(current), *map(str, current.args)):
            assert secret not in text, f"secret leaked in {type(current).__name__}: {text}"
        pending += [current.__cause__, current.__context__]


async def server_saw_disconnect(app: FakeLLM, within: float = 3.0) -> bool:
    """Whether the fake server noticed the client leave early, waiting up to ``within`` s."""
    return await anyio.to_thread.run_sync(app.disconnected.wait, within)
