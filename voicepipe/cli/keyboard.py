"""The terminal keyboard for chat: lines via the event loop, single keys (cbreak) during answers."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import anyio


class Keyboard:
    """Standard input for the chat: whole lines at the prompt, any key while the answer plays.

    Reads wait on the event loop (``anyio.wait_readable``), so a keypress is seen at once and
    nothing blocks; the terminal's own settings are restored on ``close``.
    """

    def __init__(self, stream: TextIO) -> None:
        self.fd = stream.fileno()
        self.is_tty = os.isatty(self.fd)
        # Regular files are always readable and cannot be polled: read them directly.
        self._pollable = not stat.S_ISREG(os.fstat(self.fd).st_mode)
        self._pending = b""
        self._saved: list[Any] | None = None
        if self.is_tty:
            import termios

            self._saved = termios.tcgetattr(self.fd)

    def close(self) -> None:
        """Put the terminal back as it was."""
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSANOW, self._saved)

    async def _read(self) -> bytes:
        if self._pollable:
            try:
                await anyio.wait_readable(self.fd)
            except OSError:  # e.g. /dev/null cannot be polled; reading it never blocks
                self._pollable = False
        return os.read(self.fd, 4096)

    async def read_line(self) -> str | None:
        """The next line typed (without its newline), or None at end of input (Ctrl-D)."""
        while b"\n" not in self._pending:
            data = await self._read()
            if not data:
                line, self._pending = self._pending, b""
                return line.decode("utf-8", "replace") if line else None
            self._pending += data
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode("utf-8", "replace")

    @contextmanager
    def keys(self) -> Iterator[None]:
        """Cbreak mode without echo (each key readable at once), restored on exit.

        Entering and leaving discard pending input, so neither a key typed before the answer
        nor the rest of an interrupting burst spills into the next turn.
        """
        if self._saved is None:
            yield
            return
        import termios

        before = termios.tcgetattr(self.fd)
        keys: list[Any] = [list(x) if isinstance(x, list) else x for x in before]
        keys[3] = int(keys[3]) & ~(termios.ICANON | termios.ECHO)
        keys[6][termios.VMIN] = 1
        keys[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSAFLUSH, keys)
        try:
            yield
        finally:
            termios.tcsetattr(self.fd, termios.TCSAFLUSH, before)

    async def wait_key(self) -> None:
        """Return when a key is pressed (inside ``keys()``), consuming it."""
        await self._read()
