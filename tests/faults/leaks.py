"""What an in-process fault test checks was left behind: threads, file descriptors, tasks."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import anyio


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def tasks() -> int:
    """Tasks alive in the running event loop (asyncio or trio), 0 outside one."""
    try:
        return len(anyio.get_running_tasks())
    except RuntimeError:  # anyio's NoEventLoopError
        return 0


# Worker threads idle in a pool for reuse and are not leaks: anyio's on asyncio, trio's own.
POOL_THREADS = ("AnyIO worker thread", "Trio thread")


@contextmanager
def no_leaks() -> Iterator[None]:
    """Fail if the block leaves a thread, an open fd or a task behind."""
    threads = {t.ident for t in threading.enumerate()}
    fds = open_fds()
    before_tasks = tasks()
    yield
    gc.collect()
    extra = [
        t.name
        for t in threading.enumerate()
        if t.ident not in threads and not t.name.startswith(POOL_THREADS)
    ]
    assert extra == [], f"threads left behind: {extra}"
    leaked = {fd: _target(fd) for fd in open_fds() - fds}
    assert not leaked, f"file descriptors left open: {leaked}"
    assert tasks() <= before_tasks, "tasks left behind"


def _target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"
