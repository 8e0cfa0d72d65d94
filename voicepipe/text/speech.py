"""Streaming speech normalization: markdown, URLs and emoji in, speakable text out.

Why one module of ~620 lines: like the sentence buffer, the normalizer is one resumable state
machine (a mode per construct: text, code span, fence, link target, URL host and path) over
one buffer; its steps share that state, so they stay together. Its fast path (``feed``: a
delta of plain words and single spaces is what the text steps would do, at once) reads the
same state.

Like the sentence buffer, the normalizer is a resumable scanner: each decision is a pure function
of the text, and one that needs characters not yet received stops the scan before touching any
state. The output therefore never depends on how the text was cut into deltas, and what is held
back is only what a pending decision needs (a list marker at a line start, a possible URL prefix,
the character after a ``*`` run, a URL being shortened).

What it does: emphasis markers (``*``, ``**``, ``_``, ``__``, ``~~``) and heading/quote/list
markers go, keeping the words; ``[text](url)`` becomes ``text``; images go; table rows become
comma-separated lines and separator rows go; inline code keeps its content without backticks;
fenced code is not read out (``code_blocks="mention"`` says :data:`CODE_MENTION` once per block);
bare URLs become their host; emoji go. Lines that are units (list items, headings, table rows,
the last line of a paragraph) end with a period when they have no final punctuation, so the
sentence buffer treats each as its own sentence. Whitespace runs collapse to one space, or to one
newline / one blank line where the markdown had line or paragraph breaks. Then, unless
``verbalize=False``, the ``Verbalizer`` (``voicepipe.text.normalize``) says numbers, money,
dates, units, symbols and abbreviations as words, with an optional user ``Lexicon`` first.
"""

from __future__ import annotations

import re
from typing import Literal

from voicepipe.text.lexicon import Lexicon
from voicepipe.text.normalize import Verbalizer
from voicepipe.text.scanning import Lookahead, NeedMore

__all__ = ["CODE_MENTION", "SpeechNormalizer", "to_speech"]

CODE_MENTION = "(code shown on screen)"

_EMOJI = (
    "\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff"
    "\ufe00-\ufe0f\u200d\u20e3\U000e0020-\U000e007f"
)
_EMOJI_RE = re.compile(f"[{_EMOJI}]")
# A run of characters with no markdown meaning, and single spaces between such runs (the
# common case: one match, one emit per delta). h/w start a possible URL only at a word start,
# so there they are plain only once the characters after them rule out "http(s)://" and "www."
# (at the buffer's end they are not: the step that reads a URL prefix waits for more).
_MARKUP = f"\\s\\\\`*_~\\[\\]!|hHwW{_EMOJI}"
_NOT_HTTP = (
    "[^tT]|[tT][^tT]|[tT][tT][^pP]|[tT][tT][pP](?:[^sS:]|[sS](?:[^:]|:(?:[^/]|/[^/]))"
    "|:(?:[^/]|/[^/]))"
)
_HW = f"[hH](?={_NOT_HTTP})|[wW](?=[^wW]|[wW][^wW]|[wW][wW][^.])"
_CHAR = f"[^{_MARKUP}]|(?<=[^\\W_])[hHwW]|{_HW}"
_PLAIN = re.compile(f"(?:{_CHAR})(?:{_CHAR}| (?={_CHAR}))*")
_CODE_PLAIN = re.compile(f"[^\\s`{_EMOJI}]+")
_HOST_RUN = re.compile(r"[\w.-]+")
_PATH_RUN = re.compile(r"[^\s<>\"`()\[\].,;:!?']+")
_TERMINATORS = frozenset(".!?…:;,。！？；：，")
_BULLETS = frozenset("•◦▪‣●■⁃")
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_MAX_LOOK = 256  # longest line prefix a decision may examine (separator rows, rules, fences)

Mode = Literal["text", "code", "fence_info", "fence", "skipline", "dest", "alt", "host", "path"]


class SpeechNormalizer(Lookahead):
    """Turns streamed markdown-ish LLM text into text a TTS engine should read aloud."""

    def __init__(
        self,
        *,
        code_blocks: Literal["skip", "mention"] = "mention",
        verbalize: bool = True,
        lexicon: Lexicon | None = None,
    ) -> None:
        if code_blocks not in ("skip", "mention"):
            raise ValueError(f"code_blocks must be 'skip' or 'mention', not {code_blocks!r}")
        self.code_blocks = code_blocks
        # Markdown first, then words: the verbalizer reads the clean text, also streamed.
        self.verbalizer = Verbalizer(lexicon) if verbalize or lexicon else None
        self._steps = {  # built once: _run looks a step up for every construct
            "text": self._text_step,
            "code": self._code_step,
            "fence_info": self._skip_line_step,
            "skipline": self._skip_line_step,
            "fence": self._fence_step,
            "dest": self._dest_step,
            "alt": self._alt_step,
            "host": self._host_step,
            "path": self._path_step,
        }
        self._reset()

    def _reset(self) -> None:
        self._buf = ""
        self._pos = 0
        self._final = False
        self._out: list[str] = []
        self._ws = ""  # pending whitespace: "", " ", "\n" or "\n\n"
        self._started = False  # anything emitted yet (leading whitespace is dropped)
        self._last = ""  # last character emitted
        self._dropped = False  # an emoji was dropped since the last emission
        self._prev = "\n"  # last input character consumed (for emphasis flanking)
        self._mode: Mode = "text"
        self._line_start = True
        self._unit_line = False  # list item, heading or table row: ends with a pause
        self._line_text = False  # the current line emitted something
        self._table = False
        self._cell_sep = False
        self._quote_line = False  # the line began with ">"
        self._link_depth = 0
        self._code_ticks = 0
        self._fence = ""
        self._dest_depth = 0
        self._dest_close = ")"
        self._host: list[str] = []
        self._url_parens = 0
        self._tail: int | None = None  # start of trailing punctuation after a URL path
        self._plain = False  # all read, in text mode mid-line with nothing pending (see feed)

    # ---------------------------------------------------------------- public API

    def feed(self, delta: str) -> str:
        """Add a text delta; return the speakable text it completes (possibly "")."""
        buf = self._buf + delta
        if self._plain and delta:
            # The common case, plain words and single spaces: what the text steps do, at once.
            pos, ws = self._pos, self._ws
            if delta[0] == " ":
                pos, ws = pos + 1, ws or " "
            m = _PLAIN.match(buf, pos)
            end = m.end() if m else pos
            if end == len(buf) or buf[end:] == " ":
                self._prev = buf[-1]
                self._buf, self._pos = buf[-1:], 1  # one consumed character, as _run keeps
                if m is None:
                    self._ws = ws
                    return ""
                text = m.group()
                self._last = text[-1]
                if ws and self._started:
                    text = ws + text
                self._ws = buf[end:]
                self._started = self._line_text = True
                return self.verbalizer.feed(text) if self.verbalizer else text
        self._buf = buf
        text = self._run()
        return self.verbalizer.feed(text) if self.verbalizer and text else text

    def flush(self) -> str:
        """End of stream: return everything still held, then start afresh."""
        self._final = True
        text = self._run()
        if self._unit_line:
            self._terminate()
        text += "".join(self._out)
        self._reset()
        if self.verbalizer:
            text = self.verbalizer.feed(text) + self.verbalizer.flush()
        return text

    # ---------------------------------------------------------------- output

    def _emit(self, s: str) -> None:
        if self._cell_sep:
            if self._line_text and self._last not in _TERMINATORS:
                self._out.append(",")
            self._ws = self._ws or " "
            self._cell_sep = False
        if self._dropped and self._ws == " " and s[0] in ".,;:!?)…":
            self._ws = ""  # "done ✅." reads "done."
        self._dropped = False
        if self._ws:
            if self._started:
                self._out.append(self._ws)
            self._ws = ""
        self._out.append(s)
        self._started = True
        self._last = s[-1]
        self._line_text = True

    def _space(self, kind: str) -> None:
        if kind == " ":
            self._ws = self._ws or " "
        elif self._ws in ("", " "):
            self._ws = "\n"
        else:
            self._ws = "\n\n"

    def _terminate(self) -> None:
        """End the current line as a unit: add a period unless it already has punctuation."""
        if self._line_text and self._last not in _TERMINATORS:
            self._out.append(".")
            self._last = "."

    # ---------------------------------------------------------------- scanning

    def _run_length(self, j: int, ch: str) -> int:
        n = 0
        while n < _MAX_LOOK and self._peek(j + n) == ch:
            n += 1
        return n

    def _run(self) -> str:
        steps = self._steps
        try:
            while self._pos < len(self._buf) or (self._final and self._mode in ("host", "path")):
                steps[self._mode]()
        except NeedMore:
            pass
        keep = self._pos if self._tail is None else min(self._pos, self._tail)
        if keep > 1:  # keep one consumed character as look-behind context
            self._buf = self._buf[keep - 1 :]
            self._pos -= keep - 1
            if self._tail is not None:
                self._tail -= keep - 1
        self._plain = (
            self._mode == "text"
            and self._pos == len(self._buf)
            and not (self._line_start or self._cell_sep or self._dropped)
            and self._tail is None
        )
        text = "".join(self._out)
        self._out = []
        return text

    def _consume(self, n: int) -> None:
        self._pos += n
        self._prev = self._buf[self._pos - 1]

    # ---------------------------------------------------------------- text

    def _text_step(self) -> None:
        if self._line_start:
            self._line_begin()
            return
        buf, pos = self._buf, self._pos
        m = _PLAIN.match(buf, pos)
        if m:
            self._emit(m.group())
            end = m.end()
            if buf[end : end + 1] == " ":  # the space after it, as the branch below would
                self._ws = " "
                end += 1
            self._consume(end - pos)
            return
        c = buf[pos]
        if c == "\n":
            self._end_line()
        elif c.isspace():
            self._space(" ")
            self._consume(1)
        elif c in "hHwW":
            prefix = self._url_prefix(pos)
            if prefix:
                self._mode = "host"
                self._host = []
                self._url_parens = 0
                self._consume(prefix)
            else:
                self._emit(c)
                self._consume(1)
        elif c == "\\":
            nxt = self._peek(pos + 1)
            if nxt is not None and nxt in _ASCII_PUNCT:
                self._emit(nxt)
                self._consume(2)
            else:
                self._emit(c)
                self._consume(1)
        elif c == "`":
            self._code_ticks = self._run_length(pos, "`")
            self._mode = "code"
            self._consume(self._code_ticks)
        elif c in "*_":
            self._emphasis(pos, c)
        elif c == "~":
            n = self._run_length(pos, "~")
            if n == 1:
                self._emit("~")
            self._consume(n)
        elif c == "[":
            self._link_depth += 1
            self._consume(1)
        elif c == "]":
            if self._link_depth:
                nxt = self._peek(pos + 1)
                self._link_depth -= 1
                if nxt in ("(", "["):
                    self._mode = "dest"
                    self._dest_depth = 1
                    self._dest_close = ")" if nxt == "(" else "]"
                    self._consume(2)
                    return
            self._consume(1)
        elif c == "!":
            if self._peek(pos + 1) == "[":
                self._mode = "alt"
                self._consume(2)
            else:
                self._emit("!")
                self._consume(1)
        elif c == "|":
            if self._table:
                self._cell_sep = True
            else:
                self._emit("|")
            self._consume(1)
        else:  # emoji and the joiners/selectors that build them
            self._dropped = True
            self._consume(1)

    def _emphasis(self, pos: int, c: str) -> None:
        """``*``/``_`` runs are emphasis markers unless they are arithmetic or inside a word."""
        n = self._run_length(pos, c)
        before, after = self._prev, self._peek(pos + n)
        after_space = after is None or after.isspace()
        if c == "*":
            keep = (before.isspace() and after_space) or (
                before.isdigit() and after is not None and after.isdigit()
            )
        else:
            keep = before.isalnum() and after is not None and after.isalnum()
        if keep:
            self._emit(c * n)
        self._consume(n)

    def _url_prefix(self, pos: int) -> int:
        """Length of an "http://", "https://" or "www." prefix at ``pos`` (0 if none)."""
        literals = ("https://", "http://") if self._buf[pos] in "hH" else ("www.",)
        for literal in literals:
            k = 0
            while k < len(literal):
                c = self._peek(pos + k)
                if c is None or c.lower() != literal[k]:
                    break
                k += 1
            if k == len(literal):
                return k
        return 0

    def _end_line(self) -> None:
        if self._unit_line or self._block_start(self._pos + 1):
            self._terminate()
        self._space("\n")
        self._consume(1)
        self._line_start = True
        self._unit_line = self._table = self._cell_sep = self._line_text = False
        self._quote_line = False
        self._link_depth = 0

    def _block_start(self, j: int) -> bool:
        """Whether the line at ``j`` is blank or starts a block (so the line before is a unit)."""
        after = self._skip(j, " \t", _MAX_LOOK)
        if after is None:
            return False
        j, c = after
        if c is None:
            return False
        if c == ">":
            return not self._quote_line  # a quote's next line continues it
        if c in "\n#|" or c in _BULLETS:
            return True
        if c in "`~":
            return self._run_length(j, c) >= 3
        if c in "-*_=+":
            nxt = self._peek(j + 1)
            return nxt == c or (c in "-*+" and nxt in (" ", "\t"))
        if c.isdigit():
            return self._number_marker(j) > 0
        return False

    def _number_marker(self, j: int) -> int:
        """Length of an ordered-list marker ("12. ", "3) ") at ``j``, or 0."""
        k = j
        while (c := self._peek(k)) is not None and c.isdigit() and k - j < 4:
            k += 1
        if not 1 <= k - j <= 3 or c not in (".", ")"):
            return 0
        return k + 2 - j if self._peek(k + 1) in (" ", "\t") else 0

    def _line_begin(self) -> None:
        """Interpret block markup at a line start: headings, lists, quotes, fences, tables."""
        j = self._pos
        while (c := self._peek(j)) is not None and c in " \t" and j - self._pos < _MAX_LOOK:
            j += 1
        if c is None:
            self._pos = j
            return
        if c == "\n":  # blank line: a paragraph break
            self._pos = j
            self._space("\n")
            self._consume(1)
            return
        if c == ">":
            n = 2 if self._peek(j + 1) == " " else 1
            self._pos = j
            self._consume(n)
            self._quote_line = True
            return
        if c == "#":
            n = self._run_length(j, "#")
            after = self._peek(j + n)
            if n <= 6 and (after is None or after in " \t\n"):
                self._start_line(j + n + (after in (" ", "\t")), unit=True)
                return
        if c in "`~":
            n = self._run_length(j, c)
            if n >= 3:
                self._fence = c * n
                self._pos = j
                self._consume(n)
                self._mode = "fence_info"
                if self.code_blocks == "mention":
                    self._emit(CODE_MENTION)
                    self._terminate()
                self._space("\n")
                self._space("\n")
                return
        if c in "-*_=" and self._rule_line(j, c):
            self._pos = j
            self._mode = "skipline"
            self._space("\n")
            self._space("\n")
            return
        marker = 0
        if (c in "-*+" or c in _BULLETS) and self._peek(j + 1) in (" ", "\t"):
            marker = 2
        elif c.isdigit():
            marker = self._number_marker(j)
        if marker:
            k = j + marker
            if self._peek(k) == "[":  # a task-list checkbox is not read out
                box = "".join(self._peek(k + i) or "" for i in range(4))
                if box in ("[ ] ", "[x] ", "[X] "):
                    k += 4
            self._start_line(k, unit=True)
            return
        if c == "|":
            if self._separator_row(j):
                self._pos = j
                self._mode = "skipline"
                return
            self._table = True
            self._start_line(j + 1, unit=True)
            return
        self._start_line(j, unit=False)

    def _start_line(self, j: int, *, unit: bool) -> None:
        if j > self._pos:
            self._pos = j
            self._prev = " "
        self._line_start = False
        self._unit_line = unit

    def _rule_line(self, j: int, c: str) -> bool:
        """A thematic break or setext underline: "---", "* * *", "===" alone on a line."""
        count = 0
        for k in range(j, j + _MAX_LOOK):
            ch = self._peek(k)
            if ch is None or ch == "\n":
                break
            if ch == c:
                count += 1
            elif ch not in " \t":
                return False
        return count >= 3

    def _separator_row(self, j: int) -> bool:
        """A table's ``|---|:--:|`` row, which carries no words."""
        dash = False
        for k in range(j, j + _MAX_LOOK):
            ch = self._peek(k)
            if ch is None or ch == "\n":
                break
            if ch == "-":
                dash = True
            elif ch not in "|: \t":
                return False
        return dash

    # ---------------------------------------------------------------- other modes

    def _code_step(self) -> None:
        buf, pos = self._buf, self._pos
        c = buf[pos]
        if c == "\n":
            self._mode = "text"
        elif c == "`":
            n = self._run_length(pos, "`")
            if n == self._code_ticks:
                self._mode = "text"
            self._consume(n)
        elif c.isspace():
            self._space(" ")
            self._consume(1)
        elif (m := _CODE_PLAIN.match(buf, pos)) is not None:
            self._emit(m.group())
            self._consume(m.end() - pos)
        else:
            self._consume(1)

    def _skip_line_step(self) -> None:
        end = self._buf.find("\n", self._pos)
        if end < 0:
            self._pos = len(self._buf)
            return
        self._pos = end
        self._consume(1)
        self._line_start = True
        self._mode = "fence" if self._mode == "fence_info" else "text"

    def _fence_step(self) -> None:
        if not self._line_start:
            self._skip_line_step()
            self._mode = "fence"
            return
        j = self._pos
        while (c := self._peek(j)) is not None and c in " \t" and j - self._pos < _MAX_LOOK:
            j += 1
        fence = self._fence
        closing = False
        if c == fence[0]:
            n = self._run_length(j, c)
            if n >= len(fence):
                k = j + n
                while (ch := self._peek(k)) is not None and ch in " \t" and k - j < _MAX_LOOK:
                    k += 1
                closing = ch is None or ch == "\n"
        self._line_start = False
        if closing:
            self._mode = "skipline"
            self._space("\n")
            self._space("\n")

    def _dest_step(self) -> None:
        c = self._buf[self._pos]
        if c == "\n":
            self._mode = "text"
            return
        if c == self._dest_close:
            self._dest_depth -= 1
            if self._dest_depth == 0:
                self._mode = "text"
        elif c == ("(" if self._dest_close == ")" else "["):
            self._dest_depth += 1
        self._consume(1)

    def _alt_step(self) -> None:
        c = self._buf[self._pos]
        if c == "\n":
            self._mode = "text"
            return
        if c == "]":
            nxt = self._peek(self._pos + 1)
            if nxt == "(":
                self._mode = "dest"
                self._dest_depth = 1
                self._dest_close = ")"
                self._consume(2)
                return
            self._mode = "text"
        self._consume(1)

    def _host_step(self) -> None:
        """Collect a URL's host; say it once it ends, then skip the rest of the URL."""
        pos = self._pos
        m = _HOST_RUN.match(self._buf, pos)
        if m and pos < len(self._buf):
            self._host.append(m.group())
            self._consume(m.end() - pos)
            return
        c = self._peek(pos)
        host = "".join(self._host)
        name = host.rstrip(".-_")
        if name.lower().startswith("www.") and "." in name[4:]:
            name = name[4:]
        if name:
            self._emit(name)
        if host != name and host.endswith("."):
            self._emit(".")
        if c is not None and c in "/?#:" and host == host.rstrip("."):
            self._mode = "path"
            self._tail = None
        else:
            self._mode = "text"

    def _path_step(self) -> None:
        """Skip a URL's path, keeping trailing punctuation that belongs to the sentence."""
        pos = self._pos
        m = _PATH_RUN.match(self._buf, pos)
        if m and pos < len(self._buf):
            self._tail = None
            self._consume(m.end() - pos)
            return
        c = self._peek(pos)
        if c is None or c.isspace() or c in '<>"`' or (c == "]" and self._link_depth):
            if self._tail is not None:
                self._pos = self._tail
                self._tail = None
            self._mode = "text"
            return
        if c == "(":
            self._url_parens += 1
            self._tail = None
        elif c == ")" and self._url_parens:
            self._url_parens -= 1
            self._tail = None
        elif self._tail is None:
            self._tail = pos
        self._consume(1)


def to_speech(
    text: str,
    *,
    code_blocks: Literal["skip", "mention"] = "mention",
    verbalize: bool = True,
    lexicon: Lexicon | None = None,
) -> str:
    """Normalize a whole text at once: ``feed(text) + flush()`` of a fresh normalizer."""
    normalizer = SpeechNormalizer(code_blocks=code_blocks, verbalize=verbalize, lexicon=lexicon)
    return normalizer.feed(text) + normalizer.flush()
