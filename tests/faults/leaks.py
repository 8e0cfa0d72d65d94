"""What an in-process fault test checks was left behind: threads, file descriptors, tasks."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def tasks() -> int:
    """Tasks alive in the running event loop (asyncio backend), 0 outside one."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:
        return 0


@contextmanager
def no_leaks() -> Iterator[None]:
    """Fail if the block leaves a thread, an open fd or an asyncio task behind.

    anyio's worker threads idle in a pool for reuse and are not leaks; they are ignored.
    """
    threads = {t.ident for t in threading.enumerate()}
    fds = open_fds()
    before_tasks = tasks()
    yield
    gc.collect()
    extra = [
        t.name
        for t in threading.enumerate()
        if t.ident not in threads and not t.name.startswith("AnyIO worker thread")
    ]
    assert extra == [], f"threads left behind: {extra}"
    leaked = {fd: _target(fd) for fd in open_fds() - fds}
    assert not leaked, f"file descriptors left open: {leaked}"
    assert tasks() <= before_tasks, "asyncio tasks left behind"


def _target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"
