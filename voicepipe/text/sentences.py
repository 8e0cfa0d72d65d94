"""Streaming sentence buffer: LLM text deltas in, speech-ready chunks out.

The core is a resumable scanner over a small buffer. Every decision (is this period a sentence
end? is this comma the first clause?) is a pure function of the text; when a decision needs
characters that have not arrived yet the scanner stops *before* changing any state and resumes on
the next ``feed``. That is what makes the output independent of how the text was cut into deltas,
and keeping a scan position (never rescanning) plus a bounded buffer is what keeps it linear.

Invariant (tested): the input is ``ws0 + c1 + ws1 + c2 + ... + cn + wsn`` where ``c1..cn`` are the
emitted chunks, verbatim, and every ``ws_i`` is whitespace only (possibly empty, e.g. after a CJK
full stop). Chunks are never empty and never start or end with whitespace.

Why one module of ~800 lines: the scanner is one state machine (buffer, scan position, open
quotes and brackets, the pending first-chunk decision) and every rule reads and moves that
same state; split across modules it would need that state passed around or shared.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from typing import Literal

from voicepipe.errors import ConfigError
from voicepipe.text.scanning import Lookahead, NeedMore

__all__ = ["CHUNKINGS", "Chunking", "SentenceBuffer", "check_chunking", "split_sentences"]

Chunking = Literal["sentence", "adaptive", "naive"]
CHUNKINGS: tuple[Chunking, ...] = ("adaptive", "sentence", "naive")


def check_chunking(value: object) -> Chunking:
    """``value`` as a chunking policy; the one place the names are checked.

    :raises ConfigError: it is not one of ``CHUNKINGS``.
    """
    for name in CHUNKINGS:
        if value == name:
            return name
    raise ConfigError(f"unknown chunking {value!r}: use one of {', '.join(CHUNKINGS)}")


# Terminals that need a following space (and a judgement) vs. ones that always end a sentence.
_LATIN_TERMINALS = ".!?…‼⁇⁈⁉"
_CJK_TERMINALS = "。！？｡।॥؟۔"
_TERMINALS = frozenset(_LATIN_TERMINALS + _CJK_TERMINALS)
_CLOSERS = frozenset("\"'”’»)]}」』）】〕〉》〗")
_APOSTROPHES = frozenset("'’")
_OPENERS = frozenset("\"'“‘«([{「『（【〔〈《〖")
_OPEN_BRACKETS = frozenset("([{（【〔〈《〖「『“«")
_CLOSE_BRACKETS = frozenset(")]}）】〕〉》〗」』”»")
_BULLETS = frozenset("•⁃◦▪‣●■")
_CLAUSE_CHARS = ",;:،，；：、—–-"
# How far any single decision may look; beyond it the text decides as if it had ended there.
_MAX_RUN = 16
_MAX_SPACE = 64
_MAX_WORD = 24

_NEVER_END = frozenset(
    "mr mrs ms mx dr prof rev hon sen rep gov gen capt col lt sgt cpl maj adm cmdr "
    "st mt ft messrs mme mlle e.g i.e cf vs viz".split()
)
_NUMBER_ABBREV = frozenset(
    "p pp no nos nr n° nº vol vols fig figs ch chap sec art eq eqs ex para ref pt pts op ver v "
    "approx ca tel ext ed jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_TIME_ABBREV = frozenset(("a.m", "p.m"))
_DOTTED_ABBREV = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]|[A-Za-z]{1,2}\.[A-Za-z]{1,3}")
_DOTTED_WORDS = frozenset(("ph.d", "ed.d", "m.sc", "b.sc", "d.phil"))
# Words that start a new sentence after an ambiguous abbreviation ("in the U.S. How ...").
_STARTERS = frozenset(
    "a an the i we you he she it they this that these those there here how what when where why "
    "who which however but and so then in on at for if my our its their his her your did do "
    "does is are was were can could will would should being more millions also as after before "
    "since although meanwhile today yesterday tomorrow let please thanks yes now next first "
    "finally".split()
)
_PREPOSITIONS = frozenset("at by before after until till from around about since to".split())

# The first chunk's phrase-break rule, the classic one of TTS front ends ("chinks 'n
# chunks"): a phrase ends before a function word that follows a content word. So speech can
# start after three to five words even when no comma comes ("The sky is blue | because ...",
# "The story of tea's humble beginnings | is a tale ...").
# Subordinators and relatives open a clause of their own: strong enough after two words
# ("Streaming matters | because people hear ...").
_CLAUSE_WORDS = frozenset(
    "because which who whom whose while although though whereas unless since if when where so "
    "until whether".split()
)
# Prepositions, auxiliaries and modals, coordinators, "that" and "to": a phrase starts at them.
_PHRASE_WORDS = _CLAUSE_WORDS | frozenset(
    (
        "of in on at to for with from by about over under into onto through during after before "
        "between among against without within across along around behind beyond toward towards "
        "upon like than as is are was were be been being has have had can could will would "
        "shall should may might must do does did and or but nor yet that"
    ).split()
)
# Words a first chunk never ends on: articles, prepositions, possessives, pronouns, auxiliaries,
# conjunctions, and the words of a spoken URL or number ("example dot com", "two hundred").
_FUNCTION_WORDS = _PHRASE_WORDS | frozenset(
    (
        "a an the this these those my your his her its our their whose i me we us you he him she "
        "it they them there here not no very more most such some any each every all both either "
        "neither one's dot slash colon point hundred thousand million billion trillion zero one "
        "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty "
        "ninety minus plus mr mrs ms dr st mt"
    ).split()
)
# Words that join a capitalized run into one name ("Bank of America", "Leonardo da Vinci").
_NAME_JOINERS = frozenset("of and for de da del della di du la le van von der den y the".split())

_HARD_CAP_EXTRA = 4  # words past first_chunk_max_words after which any content word ends it
_DEFAULT_CHARS_PER_SECOND = 15.0  # a typical voice, when the TTS does not report its own rate
_HOLD_MARGIN_S = 1.5  # audio that must remain queued beyond the estimated synthesis time


def _char_class(chars: str) -> str:
    return "".join("\\" + c if c in "\\]^-[" else c for c in chars)


_BASE_SPECIAL = (
    _char_class("".join(_TERMINALS) + "".join(_OPEN_BRACKETS | _CLOSE_BRACKETS | _BULLETS)) + '"\\n'
)
_SPECIAL = {
    (clause, spaces): re.compile(
        "["
        + _BASE_SPECIAL
        + (_char_class(_CLAUSE_CHARS) if clause else "")
        + ("\\s" if spaces else "")
        + "]"
    )
    for clause in (False, True)
    for spaces in (False, True)
}
_CLAUSE_END = re.compile(r"[,;:،](?=\s)|[，；：、—]")
_WORDISH = re.compile(r"\S*\w\S*")


def _is_extend(ch: str) -> bool:
    """Characters that continue a grapheme: never cut just before one."""
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or cp == 0x200D
        or 0xFE00 <= cp <= 0xFE0F
        or 0x1F3FB <= cp <= 0x1F3FF
        or 0xE0020 <= cp <= 0xE007F
        or cp == 0x20E3
    )


def _is_regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return 0x3040 <= cp <= 0x30FF or 0x3400 <= cp <= 0x9FFF or 0xAC00 <= cp <= 0xD7AF


def _count_words(text: str, enough: int) -> int:
    """Words in ``text`` (three CJK characters count as two), stopping at ``enough``."""
    n = 0
    for m in _WORDISH.finditer(text):
        cjk = sum(1 for ch in m.group() if _is_cjk(ch))
        n += max(1, 2 * cjk // 3) if cjk else 1
        if n >= enough:
            break
    return n


def _strip_openers(word: str) -> str:
    i = 0
    while i < len(word) and (word[i] in _OPENERS or word[i] in "*_"):
        i += 1
    return word[i:]


def _content_word(word: str) -> bool:
    """Whether a phrase may end on ``word``: a content word, not a function word, a possessive
    or contraction ("tea's", "don't"), nor a number ("1,000", "two")."""
    if not word or not word[-1].isalnum() or any(c.isdigit() for c in word):
        return False
    if "'" in word or "’" in word:
        return False
    return word.lower() not in _FUNCTION_WORDS


class SentenceBuffer(Lookahead):
    """Turns streamed text deltas into chunks worth synthesizing, as early as each is certain.

    ``chunking``: ``"sentence"`` releases each sentence once its end is certain; ``"adaptive"``
    also releases the first phrase early (speech starts sooner): before a function word that
    follows a content word after ``first_chunk_min_words`` words, at a clause mark or before a
    clause word after one fewer (at least two); with no such break, from
    ``first_chunk_max_words`` on before any function word, four words later before any word.
    Never on a function word, a number, or inside a name, quote or bracket. Then, once
    ``set_playout`` reports buffered audio, it groups sentences while synthesis stays ahead of
    playback. ``"naive"`` releases the whole text at ``flush`` (the baseline). Without playout
    reports the output depends only on the text, never on how it was cut into deltas.

    ``chars_per_second`` is the voice's speaking rate (``PiperTTS`` measures its own): how long
    held text will play for, which decides how long it may wait. Unknown: 15 characters a second.
    """

    def __init__(
        self,
        chunking: Chunking = "adaptive",
        *,
        first_chunk_min_words: int = 3,
        first_chunk_max_words: int = 8,
        max_chunk_chars: int = 300,
        chars_per_second: float | None = None,
    ) -> None:
        chunking = check_chunking(chunking)
        if max_chunk_chars < 1:
            raise ValueError("max_chunk_chars must be at least 1")
        self.chunking: Chunking = chunking
        self.first_chunk_min_words = first_chunk_min_words
        if first_chunk_max_words < first_chunk_min_words:
            raise ValueError("first_chunk_max_words must be at least first_chunk_min_words")
        self.first_chunk_max_words = first_chunk_max_words
        self.max_chunk_chars = max_chunk_chars
        if chars_per_second is not None and not chars_per_second > 0:
            raise ValueError("chars_per_second must be positive")
        self.chars_per_second = chars_per_second or _DEFAULT_CHARS_PER_SECOND
        self._playout: tuple[float, float] | None = None
        self._scanned = 0  # characters the scan position passed over (work measure, for tests)
        self._reset()

    def _reset(self) -> None:
        self._buf = ""  # the current piece (from the last cut) plus unscanned text
        self._pos = 0  # everything in _buf before _pos has been decided
        self._final = False
        self._first_done = self.chunking != "adaptive"
        self._depth = 0  # open brackets and curly quotes around _pos
        self._quote = False  # an ASCII double quote is open
        self._list_next: str | None = None  # label the next list item would carry ("2", "b")
        self._marker_checked = False  # the current piece was checked for a leading list marker
        self._held = ""  # finished pieces held back to grow the next chunk (verbatim)
        self._naive: list[str] = []

    # ---------------------------------------------------------------- public API

    def feed(self, delta: str) -> list[str]:
        """Add a text delta; return the chunks it completes (often none)."""
        if self.chunking == "naive":
            self._naive.append(delta)
            return []
        out = self.release_due() if self._held else []  # (release_due has nothing to do)
        if delta:
            self._buf += delta
            self._scan(out)
        return out

    def flush(self) -> list[str]:
        """End of stream: return every chunk still held, then start afresh."""
        out: list[str] = []
        if self.chunking == "naive":
            text = "".join(self._naive).strip()
            out = [text] if text else []
        else:
            self._final = True
            self._scan(out)
            if self._buf:
                self._cut(len(self._buf), len(self._buf), out, sentence=True)
            out.extend(self.release_held())
        self._reset()
        return out

    def set_playout(self, queued_audio_s: float, realtime_factor: float) -> None:
        """Report how much audio is queued ahead of playback and synthesis time per audio second.

        With audio comfortably queued, ``adaptive`` chunking holds finished sentences to make
        longer chunks (better prosody, fewer requests) as long as synthesis stays ahead.
        """
        self._playout = (max(0.0, queued_audio_s), max(0.0, realtime_factor))

    def release_due(self) -> list[str]:
        """Release held sentences only if the last playout report no longer covers holding them.

        Call after ``set_playout`` so held text goes to synthesis even while the LLM is silent.
        """
        if self._held and not self._can_hold(self._held):
            return self.release_held()
        return []

    def held_slack(self) -> float | None:
        """Seconds of queued audio to spare before held text must go to synthesis.

        None when nothing is held; at or below zero, ``release_due`` releases it.
        """
        if not self._held.strip() or self._playout is None:
            return None
        queued, rtf = self._playout
        need = rtf * len(self._held.strip()) / self.chars_per_second + _HOLD_MARGIN_S
        return queued - need

    def release_held(self) -> list[str]:
        """Release sentences held back for growth, e.g. because the audio queue is running low."""
        held, self._held = self._held.strip(), ""
        return [held] if held else []

    # ---------------------------------------------------------------- growth policy

    def _can_hold(self, text: str) -> bool:
        if self._playout is None:
            return False
        queued, rtf = self._playout
        size = len(text.strip())
        if size > self.max_chunk_chars:
            return False
        return queued >= rtf * size / self.chars_per_second + _HOLD_MARGIN_S

    def _emit(self, piece: str, out: list[str], *, sentence: bool) -> None:
        if not piece.strip():
            if self._held:
                self._held += piece
            return
        if not self._first_done:
            self._first_done = True
            out.append(piece.strip())
            return
        if self.chunking != "adaptive" or self._playout is None or not sentence:
            out.extend(self.release_held())
            out.append(piece.strip())
            return
        if self._can_hold(self._held + piece):
            self._held += piece
            return
        out.extend(self.release_held())
        if self._can_hold(piece):
            self._held = piece
        else:
            out.append(piece.strip())

    # ---------------------------------------------------------------- scanning

    def _cut(
        self, at: int, resume: int, out: list[str], *, sentence: bool, mid: bool = False
    ) -> None:
        """Cut the piece at ``at``; scanning resumes at ``resume`` (already decided up to there)."""
        piece, self._buf = self._buf[:at], self._buf[at:]
        self._pos = max(0, resume - at)
        self._marker_checked = mid
        self._emit(piece, out, sentence=sentence)

    def _scan(self, out: list[str]) -> None:
        limit = self.max_chunk_chars
        try:
            while True:
                if not self._marker_checked:
                    self._check_marker()
                if self._pos >= limit:
                    self._force_cut(out)
                    continue
                buf = self._buf
                end = min(len(buf), limit)
                first = not self._first_done
                pattern = _SPECIAL[first, first or self._list_next is not None]
                m = pattern.search(buf, self._pos, end)
                self._scanned += (m.start() + 1 if m else end) - self._pos
                if m is None:
                    self._pos = end
                    if end == len(buf):
                        return
                    continue
                i = m.start()
                self._pos = i
                self._step(i, buf[i], out)
        except NeedMore:
            return

    def _step(self, i: int, c: str, out: list[str]) -> None:
        """Handle the interesting character ``c`` at ``i``; advance the scan or cut."""
        if c in _TERMINALS:
            cut, resume = self._terminal(i)
            if cut is None:
                self._pos = resume
                return
            self._depth, self._quote = 0, False
            while cut > self.max_chunk_chars:  # closers ran past the cap: cut before them first
                self._pos = resume
                size = len(self._buf)
                self._force_cut(out)
                shift = size - len(self._buf)
                cut, resume = cut - shift, resume - shift
            self._cut(cut, resume, out, sentence=True)
        elif c == "\n":
            if self._newline_breaks(i):
                self._depth, self._quote = 0, False
                self._cut(i, i + 1, out, sentence=True)
            else:
                self._pos = i + 1
        elif c in _BULLETS:
            if i > 0 and self._buf[i - 1].isspace() and self._buf[:i].strip():
                self._cut(i, i, out, sentence=True)
            else:
                self._pos = i + 1
        elif c.isspace():
            if not self._first_done and (self._phrase_break(i) or self._first_too_long(i)):
                self._cut(i, i, out, sentence=False, mid=True)
                return
            nxt = self._peek(i + 1)
            label = self._list_next or ""
            if nxt is not None and nxt == label[:1] and self._buf[:i].strip():
                marker = self._marker_at(i + 1)
                if marker is not None and marker[0] == self._list_next:
                    self._cut(i, i + 1, out, sentence=True)
                    return
            self._pos = i + 1
        elif c == '"':
            self._straight_quote(i)
        elif c in _OPEN_BRACKETS:
            nxt = self._peek(i + 1)
            if c == "“" or (nxt is not None and not nxt.isspace()):
                self._depth += 1
            self._pos = i + 1
        elif c in _CLOSE_BRACKETS:
            self._depth = max(0, self._depth - 1)
            self._pos = i + 1
        else:  # a clause character while the first chunk is pending
            at = self._clause(i)
            if at is None:
                self._pos = i + 1
            else:
                self._cut(at, at, out, sentence=False, mid=True)

    def _straight_quote(self, i: int) -> None:
        prev = self._buf[i - 1] if i > 0 else " "
        if prev.isdigit():  # 27" is inches
            pass
        elif self._quote:
            self._quote = False
        else:
            nxt = self._peek(i + 1)
            if nxt is not None and not nxt.isspace() and (prev.isspace() or prev in _OPENERS):
                self._quote = True
        self._pos = i + 1

    def _check_marker(self) -> None:
        """At a piece start, step over a list marker ("1.", "b)", "• 9.") so it is no sentence."""
        buf = self._buf
        j = self._pos
        while j < len(buf) and buf[j].isspace():
            j += 1
            if j - self._pos > _MAX_SPACE:
                self._marker_checked = True
                return
        if j >= len(buf):
            if self._final:
                self._marker_checked = True
                return
            raise NeedMore
        marker = self._marker_at(j)
        self._marker_checked = True
        if marker is not None:
            label, end = marker
            if label is not None:
                self._list_next = str(int(label) + 1) if label.isdigit() else chr(ord(label) + 1)
            self._pos = end

    def _marker_at(self, j: int) -> tuple[str | None, int] | None:
        """Parse a list marker at ``j``: (label or None for a bare bullet, end), or None."""
        c = self._peek(j)
        bullet = c is not None and c in _BULLETS
        if bullet:
            j += 1
            while (c := self._peek(j)) is not None and c in " \t":
                j += 1
        start = j
        while (c := self._peek(j)) is not None and c.isdigit() and j - start < 4:
            j += 1
        digits = j - start
        if digits == 0 and c is not None and c.isascii() and c.isalpha():
            j += 1
        elif digits == 0 or digits > 3:
            return (None, start) if bullet else None
        label = self._buf[start:j]
        c = self._peek(j)
        if c == ")":
            j += 1
        elif c == ".":
            j += 1
            if self._peek(j) == ")":
                j += 1
        else:
            return (None, start) if bullet else None
        c = self._peek(j)
        if c is None or c.isspace():
            return label, j
        return (None, start) if bullet else None

    def _newline_breaks(self, i: int) -> bool:
        """A blank line, or a line starting with a list/heading/quote/table marker, ends a piece."""
        after = self._skip(i + 1, " \t\r\f\v", _MAX_SPACE - 1)
        if after is None:
            return True
        j, c = after
        if c is None:
            return False
        if c == "\n" or c in _BULLETS or c in "#>|":
            return True
        if c in "-*+":
            return self._peek(j + 1) in (" ", "\t")
        if c.isdigit():
            return self._marker_at(j) is not None
        return False

    def _first_too_long(self, i: int) -> bool:
        """The first chunk reached ``first_chunk_max_words`` with no phrase break: cut at this
        space if a content word ends here and a function word of any kind (an article, a
        pronoun) follows; from four words past the cap, before any word but inside a name.

        A cap, not a style: it bounds how long speech can wait on a comma-free first sentence,
        and never ends the chunk on a function word, a number or inside a noun phrase it can see.
        """
        cap = self.first_chunk_max_words
        if i == 0 or self._buf[i - 1].isspace() or self._depth or self._quote:
            return False
        words = _count_words(self._buf[:i], cap + _HARD_CAP_EXTRA)
        if words < cap:
            return False
        prev = self._last_word(i)
        if not _content_word(prev):
            return False
        start = self._word_start(i + 1)
        nxt = self._next_word(start)
        if self._peek(start) is not None and not nxt:
            return False  # a number or a symbol comes next: not here
        if words < cap + _HARD_CAP_EXTRA:
            return nxt.lower() in _FUNCTION_WORDS and not (prev[:1].isupper() and nxt[:1].isupper())
        return not (prev[:1].isupper() and nxt[:1].isupper())  # inside "New York Stock Exchange"

    def _phrase_break(self, i: int) -> bool:
        """Whether the first chunk may end at the space ``i``: before a function word that
        follows a content word, outside brackets, quotes, names, numbers and spoken URLs."""
        if i == 0 or self._buf[i - 1].isspace() or self._depth or self._quote:
            return False
        j = i + 1
        while (ch := self._peek(j)) is not None and ch.isalpha():
            j += 1
            if j - i > 9:  # longer than any phrase word
                return False
        word = self._buf[i + 1 : j]
        if word not in _PHRASE_WORDS:  # lowercase only: "In" mid-sentence is a title's
            return False
        if ch is not None and not (ch.isspace() or ch in ',;:.!?)]}…—–"”'):
            return False  # "that's", "in-depth", "or2": not the plain function word
        prev = self._last_word(i)
        if not _content_word(prev):
            return False
        if prev[:1].isupper() and word in _NAME_JOINERS:
            return False  # "Bank of America", "Procter and Gamble"
        if word == "at" and "dot" in self._words_after(j, 3):
            return False  # "write to jane at example dot com"
        if word in ("and", "or"):  # a new clause or noun phrase, not "the capital and largest"
            after = self._words_after(j, 1)
            if not after or (after[0] not in _FUNCTION_WORDS and after[0] != "then"):
                return False
        need = self._strong_min_words() if word in _CLAUSE_WORDS else self.first_chunk_min_words
        return _count_words(self._buf[:i], need) >= need

    def _strong_min_words(self) -> int:
        """Words before a strong break (a clause mark, a clause word): one fewer than before a
        phrase word, at least two ("One day, | a keeper ...", "Streaming matters | because")."""
        need = self.first_chunk_min_words
        return min(need, max(2, need - 1))

    def _last_word(self, i: int) -> str:
        """The word ending at ``i``, without openers or closing quotes and brackets."""
        word = _strip_openers(self._word_before(i))
        return word.rstrip("".join(_CLOSERS))

    def _word_start(self, j: int) -> int:
        """The first non-space at or after ``j`` (openers skipped)."""
        start = j
        while (c := self._peek(j)) is not None and (c.isspace() or c in _OPENERS):
            j += 1
            if j - start > _MAX_SPACE:
                break
        return j

    def _words_after(self, j: int, count: int) -> list[str]:
        """Up to ``count`` words from ``j`` on, lowercased (waits until they are whole)."""
        words = []
        for _ in range(count):
            j = self._word_start(j)
            word = self._next_word(j)
            if not word:
                break
            words.append(word.lower())
            j += len(word)
        return words

    def _clause(self, i: int) -> int | None:
        """Where to cut the first chunk at the clause character at ``i``, if it is a real break."""
        buf = self._buf
        c = buf[i]
        if self._depth or self._quote:
            return None
        if c in ",;:،":
            nxt = self._peek(i + 1)
            if nxt is None or not nxt.isspace():
                return None
        elif c in "–-":
            nxt = self._peek(i + 1)
            if i == 0 or not buf[i - 1].isspace() or nxt is None or not nxt.isspace():
                return None
        need = self._strong_min_words()
        if _count_words(buf[:i], need) < need:
            return None
        return i + 1

    # ---------------------------------------------------------------- sentence ends

    def _spaced_dots(self, j: int) -> int:
        """Number of dots in a spaced ellipsis ". . ." starting with the dot at ``j``."""
        n = 1
        while n < 8 and self._peek(j + 2 * n - 1) == " " and self._peek(j + 2 * n) == ".":
            n += 1
        return n

    def _terminal(self, i: int) -> tuple[int | None, int]:
        """Decide the terminal at ``i``: (cut position or None, where scanning resumes)."""
        buf = self._buf
        prev = buf[i - 1] if i > 0 else " "
        if buf[i] == ".":
            if prev.isspace():
                dots = self._spaced_dots(i)
                if dots == 3:  # ". . ." mid-sentence omission: never an end
                    return None, i + 5
                if dots > 3:
                    end = i + 2 * dots - 1
                    return self._decide(i, end, end, "ellipsis")
            elif self._peek(i + 1) == " " and self._peek(i + 2) == ".":
                dots = self._spaced_dots(i + 2)
                if dots >= 3:  # "compounds. . . . The": the word's period ends the sentence
                    m = i + 2 * dots + 1
                    if self._peek(m) == " ":
                        first = self._first_of_next(m)
                        if first is not None and not first.islower():
                            return i + 1, i + 1
                    return None, i + 1
        j = i
        while (c := self._peek(j)) is not None and c in _TERMINALS and j - i < _MAX_RUN:
            j += 1
        cluster = buf[i:j]
        if prev in "[(" and cluster.strip(".…") == "":  # "[...]" marks an omission
            return None, j
        while (c := self._peek(j)) is not None and _is_extend(c) and j - i < 2 * _MAX_RUN:
            j += 1
        k = j
        while (c := self._peek(k)) is not None and c in _CLOSERS and k - j < _MAX_RUN:
            if c in _APOSTROPHES:
                nxt = self._peek(k + 1)
                if nxt is not None and not (nxt.isspace() or nxt in _CLOSERS):
                    break
            k += 1
        if any(ch in _CJK_TERMINALS for ch in cluster):
            kind = "cjk"
        elif "!" in cluster or "?" in cluster or any(ch in "‼⁇⁈⁉" for ch in cluster):
            kind = "exclaim"
        elif len(cluster) > 1 or "…" in cluster:
            kind = "ellipsis"
        else:
            kind = "period"
        return self._decide(i, j, k, kind)

    def _first_of_next(self, m: int) -> str | None:
        """First character of the next word after the whitespace at ``m`` (openers skipped)."""
        start = m
        while (c := self._peek(m)) is not None and c.isspace() and m - start < _MAX_SPACE:
            m += 1
        n = m
        while (c := self._peek(n)) is not None and c in _OPENERS and n - m < _MAX_RUN:
            n += 1
        return c

    def _decide(self, i: int, j: int, k: int, kind: str) -> tuple[int | None, int]:
        """Given terminal cluster ``[i, j)`` and closers ``[j, k)``, is ``k`` a sentence end?"""
        depth, quote = self._depth, self._quote
        for ch in self._buf[j:k]:
            if ch == '"':
                quote = False
            elif ch in _CLOSE_BRACKETS:
                depth = max(0, depth - 1)
        after = self._peek(k)
        if depth or quote:
            return None, j
        if kind == "cjk" or after is None:
            return k, k
        if not after.isspace():
            return None, j
        word = _strip_openers(self._word_before(i)) if kind == "period" else ""
        m = k
        newline = False
        while (c := self._peek(m)) is not None and c.isspace():
            if c == "\n":
                if word.lower() not in _NEVER_END:
                    return k, k  # a line break after a terminal settles it
                newline = True
            m += 1
            if m - k > _MAX_SPACE:
                return k, k
        if newline:
            return None, j
        n = m
        while (c := self._peek(n)) is not None and c in _OPENERS and n - m < _MAX_RUN:
            n += 1
        if c is None:
            return k, k
        if c.islower():
            return None, j
        if kind != "period" or self._period_ends(i, word, c, n):
            return k, k
        return None, j

    def _period_ends(self, i: int, word: str, first: str, n: int) -> bool:
        """Whether a single period after ``word``, followed by a non-lowercase ``first``, ends."""
        low = word.lower()
        if low in _NEVER_END:
            return False
        if first.isdigit():
            return low not in _NUMBER_ABBREV
        if low in _TIME_ABBREV:  # "At 5 a.m. Mr. Smith" goes on; "left at 6 P.M. Mr. Smith" ends
            return not self._time_phrase(i - len(word))
        if low in _DOTTED_WORDS or _DOTTED_ABBREV.fullmatch(word):
            return self._next_word(n).lower() in _STARTERS
        if len(word) == 1 and word.isupper():
            before = self._previous_words(i - len(word), 1)
            prev = before[0] if before else ""
            if word == "I" and prev and not prev[0].isupper():
                return True  # "you and I. Did ..."
            if not prev or prev[0].isupper():  # an initial: "Jonas E. Smith"
                return self._next_word(n).lower() in _STARTERS
        return True

    def _word_before(self, i: int) -> str:
        buf = self._buf
        j = i
        while j > 0 and not buf[j - 1].isspace() and i - j < _MAX_WORD * 4:
            j -= 1
        return buf[j:i]

    def _previous_words(self, i: int, count: int) -> list[str]:
        """Up to ``count`` words before ``i`` in the piece, nearest first, openers stripped."""
        words: list[str] = []
        buf = self._buf
        while len(words) < count:
            while i > 0 and buf[i - 1].isspace():
                i -= 1
            if i == 0:
                break
            word = self._word_before(i)
            i -= len(word)
            words.append(_strip_openers(word))
        return words

    def _time_phrase(self, i: int) -> bool:
        """The piece before ``i`` is only a preposition and numbers, e.g. "At 5" (a.m.)."""
        words = [w for w in self._previous_words(i, 4) if not w[:1].isdigit()]
        if len(self._previous_words(i, 4)) == 4:
            return False
        return all(w.lower() in _PREPOSITIONS for w in words)

    def _next_word(self, n: int) -> str:
        j = n
        while (c := self._peek(j)) is not None and c.isalpha() and j - n < _MAX_WORD:
            j += 1
        return self._buf[n:j]

    # ---------------------------------------------------------------- long runs

    def _force_cut(self, out: list[str]) -> None:
        """The piece reached ``max_chunk_chars`` with no end: cut at a clause, space or grapheme."""
        limit = self.max_chunk_chars
        window = self._buf[:limit]
        cut = 0
        for m in _CLAUSE_END.finditer(window, limit // 3):
            cut = m.end()
        if cut == 0:
            j = limit - 1
            while j > 0 and not window[j].isspace():
                j -= 1
            if window[:j].strip():
                cut = j
        if cut == 0:
            cut = self._grapheme_cut(limit)
        self._cut(cut, self._pos, out, sentence=True, mid=True)

    def _grapheme_cut(self, h: int) -> int:
        if self._peek(h) is None:
            return h
        buf = self._buf
        j = h
        while j > 1 and (_is_extend(buf[j]) or buf[j - 1] == "\u200d"):
            j -= 1
        if j > 1 and _is_regional(buf[j]):
            run = 0
            while j - run - 1 >= 0 and _is_regional(buf[j - run - 1]):
                run += 1
            if run % 2:
                j -= 1
        return j if j > 0 else h


def split_sentences(text: str) -> list[str]:
    """Split a whole text at plain sentence boundaries (no clause chunks, no length cap)."""
    buffer = SentenceBuffer("sentence", max_chunk_chars=sys.maxsize)
    return buffer.feed(text) + buffer.flush()
