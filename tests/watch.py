"""Waiting on another process without polling: woken by each change in a folder (inotify) and by
the process's exit (a pidfd), never by a timer."""

from __future__ import annotations

import ctypes
import os
import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

IN_MODIFY = 0x002  # a file in the folder was written
IN_CREATE = 0x100  # a file was created in the folder
IN_MOVED_TO = 0x080  # a file was renamed into the folder


class FolderWatch:
    """Changes to the files in ``folder``, as Linux reports them.

    Create it before starting the process that writes there, then ``wait_until`` a condition
    on those files holds: the condition is checked first and again after every change.
    """

    def __init__(self, folder: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        mask = IN_MODIFY | IN_CREATE | IN_MOVED_TO
        if libc.inotify_add_watch(self._fd, os.fsencode(folder), mask) < 0:
            error = ctypes.get_errno()
            os.close(self._fd)
            raise OSError(error, f"cannot watch {folder}")

    def wait_until(
        self,
        ready: Callable[[], bool],
        *,
        process: subprocess.Popen[Any] | None = None,
        timeout: float = 60.0,
    ) -> None:
        """Return once ``ready()``; fail if ``process`` exits first or ``timeout`` s pass."""
        exited = os.pidfd_open(process.pid) if process is not None else None
        try:
            deadline = time.monotonic() + timeout
            while not ready():
                left = deadline - time.monotonic()
                assert left > 0, f"not ready within {timeout} s"
                waiting = [self._fd] if exited is None else [self._fd, exited]
                woken, _, _ = select.select(waiting, [], [], left)
                if self._fd in woken:
                    os.read(self._fd, 1 << 16)  # the events themselves: only the wake-up counts
                elif woken:  # the process ended: one last look, then give up
                    assert ready(), f"the process exited ({process and process.wait()}) first"
        finally:
            if exited is not None:
                os.close(exited)

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> FolderWatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
