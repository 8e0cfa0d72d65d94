"""What the resumable scanners of the speech text stage share.

The sentence buffer, the markdown cleaner and the verbalizer all read a buffer that grows by
deltas. A decision that needs text not yet received raises ``NeedMore`` before it changes any
state, and the scan resumes there on the next feed; that is why their output never depends on
how the text was cut. At the end of the stream there is nothing more to wait for: a look past
the buffer's end then sees None.
"""

from __future__ import annotations

__all__ = ["Lookahead", "NeedMore"]


class NeedMore(Exception):
    """A decision needs characters (or a word) that have not arrived yet."""


class Lookahead:
    """A scanner's buffer, read ahead of its scan position."""

    _buf: str
    _final: bool  # the stream has ended: nothing more will arrive

    def _peek(self, j: int) -> str | None:
        """The character at ``j``; None past the end of a finished stream.

        :raises NeedMore: ``j`` is past the end and the stream goes on.
        """
        if j < len(self._buf):
            return self._buf[j]
        if self._final:
            return None
        raise NeedMore

    def _skip(self, j: int, blanks: str, limit: int) -> tuple[int, str | None] | None:
        """The first position from ``j`` whose character is not in ``blanks``, and that
        character (None at the end of a finished stream); None past ``limit`` blanks."""
        start = j
        while (c := self._peek(j)) is not None and c in blanks:
            j += 1
            if j - start > limit:
                return None
        return j, c
