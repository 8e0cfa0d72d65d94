"""Streaming text normalization for TTS: numbers, money, dates, units and symbols as words.

Why one module of ~670 lines: the verbalizer is one resumable scanner. Its fast paths (plain
words by str methods in ``feed``, runs of them by one regular expression in ``_run``) and its
context rules (``_say`` and the methods after it) read and move the same state: the buffer,
the word window, the previous word and the letters already sent early. What a token says on
its own, with no words around it, is in ``readings``; the tables are in ``tables``.

Speed: the stage runs on every LLM delta (about 4 characters), so the per-delta work is what
counts. Most deltas end a plain word and start the next; ``feed`` decides those with str
methods and hands only words that a rule may claim to ``_run`` (``scripts/bench_normalize.py``).

The verbalizer reads the speech text (markdown already gone) word by word, a word being a run
without whitespace. A plain word passes as soon as it is complete; a word with a digit or a
symbol, or one that may start a phrase (a title, a month, a lexicon entry), is read together
with the words it needs after it ("$1.5 million" is "one point five million dollars", "Dr.
Smith" needs to see "Smith"). Like the other scanners, a rule asks for words one at a time and
a word not yet complete stops the scan before any state changes, so the output never depends
on how the text was cut into deltas. A rule looks at most at the next two words, never across
a line break, so the holdback is the word being written plus at most two more.

The rules (English, American readings):

- cardinals and decimals: "1,250" one thousand two hundred fifty; "2.50" two point five zero;
  over 15 digits or with leading zeros: digit by digit;
- years: a bare four-digit number from 1100 to 2099 is a year ("1999" nineteen ninety-nine,
  "2005" two thousand five) unless a unit follows; "1990s" nineteen nineties;
- money: "$5.99" five dollars and ninety-nine cents, "$1.5 million" one point five million
  dollars, "€3.50", "£1,200", "5 USD", "50¢";
- percent, ordinals ("22nd"), ranges ("10-20", "$5–10", "1990–2000": "to"), fractions ("3/4"
  three quarters; "1 1/2" one and one half), units after a number (table in ``tables``);
- dates: ISO "2024-03-04" and "March 4, 2024" read March fourth, twenty twenty-four; "4 March"
  the fourth of March. Slashed dates with a year are read month first (US), "3/4/2024" March
  fourth, unless the first number cannot be a month (over 12): then day first; "2024/03/04" is
  year, month, day. Two numbers alone ("3/4") are a fraction, never a date;
- times: "10:30" ten thirty, "10:00" ten o'clock, "12:05 pm" twelve oh five p.m.;
- phone numbers ("555-123-4567", "(555) 123-4567", "+1-555-123-4567"): digit by digit in groups;
- emails and domains ("jane@example.com": jane at example dot com), "@name", "#3" number three;
- math and other symbols by name ("2+2=4" two plus two equals four, "&" and, "°" degrees);
  three or more of the same symbol in a row ("$$$", "===") are skipped;
- abbreviations: "Dr. Smith" Doctor Smith but "Elm Dr." Elm Drive, "St. Louis" Saint Louis but
  "Elm St." Elm Street; Mr., Mrs., Prof., Mt., e.g., etc., vs. and more (``tables``).

A user ``Lexicon`` is consulted first, for every word.
"""

from __future__ import annotations

import re

from voicepipe.text import numbers as nw
from voicepipe.text.lexicon import Lexicon
from voicepipe.text.readings import (
    AMOUNT,
    PHONE,
    TIME,
    only_symbols,
    pieces,
    say_money,
    shape,
    time_of_day,
)
from voicepipe.text.scanning import NeedMore
from voicepipe.text.tables import (
    ABBREVIATIONS,
    CURRENCY_CODES,
    CURRENCY_SYMBOLS,
    MONTHS,
    SCALES,
    SYMBOLS,
    TIME_SUFFIXES,
    TITLES,
    UNITS,
)

__all__ = ["Verbalizer", "verbalize"]

_DIGITS = frozenset("0123456789")
_MAX_WORD = 256  # a longer run without whitespace is cut here (bounds every rule's work)
_LEAD = "([{\"'“‘«¿¡"  # stripped with str.lstrip / str.rstrip
_TRAIL = ")]}\"'”’»,;:!?…"
_SPACE = re.compile(r"\s+")
_WORD = re.compile(rf"\S{{0,{_MAX_WORD}}}")
_GAP_WORD = re.compile(rf"(\s*)(\S{{0,{_MAX_WORD}}})")
_WS = re.compile(r"\s")
# A word spoken as written: letters (and inner apostrophes or hyphens) with prose punctuation.
_PLAIN = re.compile(r"[(\"'“‘]*[^\W\d_]+(?:['’-][^\W\d_]+)*[)\]\"'”’,;:!?…]*\.?")
# A number, maybe after a currency symbol, and nothing else: its rule (``_amount``) asks for
# the next word first, before it decides anything.
_ASKS_NEXT = re.compile(r"[$€£¥₹₩₽₿]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")
_LETTER_RUN = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")  # a plain word's core
_SENTENCE_END = re.compile(r"[.!?…][)\]\"'”’]*$")
_STARTERS = frozenset(
    "the a an it this that he she they we i you there here his her its our".split()
)

_INITIALISM = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")
_LETTERS = re.compile(r"[^\W\d_]+")
_DAY = re.compile(r"([0-9]{1,2})(st|nd|rd|th)?")


def _prefixes(*tables: object) -> frozenset[str]:
    keys = [str(k).lower() for table in tables for k in table]  # type: ignore[attr-defined]
    return frozenset(k[:i] for k in keys for i in range(1, len(k) + 1))


_PREFIXES = _prefixes(TITLES, ABBREVIATIONS, MONTHS, CURRENCY_CODES, TIME_SUFFIXES)
# The cores, lowercased, that make a plain word _special (without a lexicon); a plain word
# has at most one final period, so "am." is the only way TIME_SUFFIXES.rstrip(".") adds one.
_CLAIMS = frozenset(
    [
        k
        for table in (TITLES, ABBREVIATIONS, MONTHS, CURRENCY_CODES)
        for k in table
        if k == k.lower()
    ]
    + [k + dot for k in TIME_SUFFIXES for dot in ("", ".")]
)


def _trie(words: list[str]) -> str:
    """An alternation of lowercase ``words``, any case, sharing prefixes: one branch a letter.

    Written out as classes ("[dD][rR]"), not (?i:...), which is several times slower in
    Unicode patterns. str.lower() turns only A-Z and the Kelvin sign into ASCII letters, so
    these classes match every word whose lowercase form is in ``words``.
    """
    if "" in words:
        rest = [w for w in words if w]
        return f"(?:{_trie(rest)})?" if rest else ""
    branches = []
    for head in sorted({w[0] for w in words}):
        cases = {head, head.upper(), *("\u212a" if head == "k" else "")}
        chars = "".join(sorted(re.escape(c) for c in cases))
        tails = _trie([w[1:] for w in words if w[0] == head])
        branches.append((f"[{chars}]" if len(cases) > 1 else chars) + tails)
    return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"


def _easy(final: bool) -> re.Pattern[str]:
    """Whitespace and complete plain words no rule may claim, then letters being written.

    The common case by far, so it is one match per delta, not a step per word. A word is left
    to the rules (the loop in ``Verbalizer._run``) when its letters, in any case, are those of
    a title, abbreviation, month, currency code or am/pm: a superset of what ``_special``
    claims, which then decides. Group 1 is the last word, group 2 the whitespace after it,
    group 3 the letters of an unfinished word that ends the buffer (as many as
    ``_early_letters`` would look at).
    """
    tables = (TITLES, ABBREVIATIONS, MONTHS, TIME_SUFFIXES, CURRENCY_CODES)
    keys = {k.lower().rstrip(".") for table in tables for k in table}
    letters = _trie(sorted(k for k in keys if _LETTER_RUN.fullmatch(k)))
    claimed = rf"[(\"'“‘]*{letters}(?![^\W\d_]|['’-][^\W\d_])"
    end = r"(?:\s|\Z)" if final else r"\s"
    word = rf"(?!{claimed})(?=\S{{1,{_MAX_WORD - 1}}}{end})((?>{_PLAIN.pattern}))(?={end})"
    return re.compile(rf"(?:\s*+{word})*(\s*)(?:([^\W\d_]{{1,{_MAX_WORD - 1}}}+)\Z)?")


def _split(word: str) -> tuple[str, str, str]:
    """Leading and trailing punctuation apart from the core: '("$5,")' -> '("', '$5', '",)'."""
    rest = word.lstrip(_LEAD)
    core = rest.rstrip(_TRAIL)
    return word[: len(word) - len(rest)], core, rest[len(core) :]


def _undot(core: str, trail: str) -> tuple[str, str]:
    """Move a sentence-final period run from the core to the trailing punctuation."""
    stripped = core.rstrip(".")
    if stripped and stripped != core:
        return stripped, core[len(stripped) :] + trail
    return core, trail


class _Words:
    """The words from ``pos`` on, each complete or not asked for; None past a line break."""

    __slots__ = ("_next", "buf", "ends", "final", "words")

    def __init__(self, buf: str, pos: int, final: bool) -> None:
        self.buf, self.final = buf, final
        self.words: list[str] = []
        self.ends: list[int] = []
        self._next = pos  # where the next word starts (or whitespace before it)

    def __call__(self, k: int) -> str | None:
        words = self.words
        while len(words) <= k:
            if not self._scan():
                return None
        return words[k]

    def _scan(self) -> bool:
        """Read the next word: up to whitespace, or _MAX_WORD characters of none."""
        buf = self.buf
        if self.words:
            m = _GAP_WORD.match(buf, self._next)
            assert m is not None
            if "\n" in m[1]:
                return False
            if m.end(1) >= len(buf):
                if self.final:
                    return False
                raise NeedMore
            start, end = m.span(2)
        else:
            start = self._next
            end = _WORD.match(buf, start).end()  # type: ignore[union-attr]
        if end == len(buf) and end - start < _MAX_WORD and not self.final:
            raise NeedMore
        self.words.append(buf[start:end])
        self.ends.append(end)
        self._next = end
        return True

    def end(self, n: int) -> int:
        return self.ends[n - 1]


class Verbalizer:
    """Rewrites streamed speech text so numbers, symbols and abbreviations are words."""

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self.lexicon = lexicon if lexicon is not None else Lexicon()
        self._reset()

    def _reset(self) -> None:
        self._buf = ""
        self._pos = 0
        self._final = False
        self._prev = ""  # the previous word as written ("" at a line or text start)
        self._sent = 0  # letters of the word at the buffer's start already emitted
        self._blocked = False  # a rule waits for a word to end, which only whitespace does

    def feed(self, delta: str) -> str:
        """Add text; return what is now decided (possibly "").

        A short buffer without a lexicon (the common case: the end of a word, a space and the
        start of the next) is decided here with str methods, several times faster than the
        regular expressions and the loop of ``_run``, which it does exactly: a word passes
        when ``_PLAIN`` reads all of it and it is not ``_special``, and the first that does
        not is left, with all after it, to ``_run``.
        """
        buf = self._buf = self._buf + delta
        if len(buf) >= _MAX_WORD or self.lexicon:
            if self._blocked and not _WS.search(delta):
                # Nothing can be decided: no word ended. But a run without whitespace is cut
                # into words every _MAX_WORD characters, so try again each time the buffer
                # grows by that much; waiting for whitespace would grow it without end and
                # make every delta cost its length (quadratic on "$$$$...").
                if (len(buf) - len(delta)) // _MAX_WORD == len(buf) // _MAX_WORD:
                    return ""
            return self._run()
        sent = self._sent
        if sent and sent + len(delta) == len(buf) and delta.isalpha() and not self._blocked:
            self._sent = len(buf)  # more letters of a word sent early (see _early_letters)
            return delta
        if self._blocked and not _WS.search(delta):
            return ""
        items = buf.replace("\n", " ").split(" ")  # the same offsets; "\n" is seen below
        last = items.pop()
        pos = 0
        rule = False  # the loop stopped at a complete word that is not plain
        for word in items:
            if word:
                if word.isalpha():
                    claimed = word.lower() in _CLAIMS
                elif word[-1] in ",;:!?." and (head := word[:-1]).isalpha():
                    claimed = (word if word[-1] == "." else head).lower() in _CLAIMS
                else:
                    m = _PLAIN.match(word)
                    claimed = m is None or m.end() < len(word) or self._special(word)
                if claimed:
                    rule = word.isprintable()  # else it holds whitespace other than " ", "\n"
                    break
                self._prev = word
            pos += len(word) + 1
            if buf[pos - 1] == "\n":
                self._prev = ""
        said = buf[sent:pos]
        if pos:
            self._sent = sent = 0
        if pos < len(buf) - len(last) or not (last.isalpha() or last.isprintable()):
            self._buf = buf[pos:]  # a word for the rules, or whitespace other than " ", "\n"
            if rule and _ASKS_NEXT.fullmatch(word) and last.isprintable():
                if buf[pos + len(word) :].lstrip(" ") == last:
                    # An amount's rule asks for the next word before anything else, and it
                    # is not complete: _run would raise NeedMore in _say and stop here.
                    self._blocked = True
                    return said
            return said + self._run(rule_first=rule)
        self._buf = last
        if not last:
            self._blocked = False
        elif not last.isalpha():  # a word still being written: _run would do just this
            early = self._early_letters(last, 0)
            self._blocked = not early
            said += early
        elif last.lower() in _PREFIXES:  # _early_letters, for a word of letters, no lexicon
            self._blocked = True
        else:
            self._sent = len(last)
            self._blocked = sent == len(last)
            said += last[sent:]
        return said

    def flush(self) -> str:
        """End of text: return the rest, then start afresh."""
        self._final = True
        text = self._run()
        self._reset()
        return text

    def _run(self, *, rule_first: bool = False) -> str:
        out: list[str] = []
        buf, pos, n = self._buf, self._pos, len(self._buf)
        easy = None if self.lexicon else _EASY_FINAL if self._final else _EASY
        while pos < n:
            if rule_first:  # _short found the word at pos complete and not plain: a rule's
                rule_first = False
            else:
                if easy is not None:  # see _easy (with a lexicon, an entry may start anywhere)
                    m = easy.match(buf, pos)
                    assert m is not None  # every part of it may be empty
                    stop = m.end(2)
                    if stop > pos:
                        out.append(buf[pos + self._sent : stop])
                        self._sent = 0
                        if "\n" in m[2]:
                            self._prev = ""
                        elif m[1] is not None:
                            self._prev = m[1]
                        pos = stop
                        if pos == n:
                            continue
                    letters = m[3]
                    if letters is not None and not self._final and letters.isalpha():
                        # The word being written, all letters: _early_letters with no lexicon.
                        if letters.lower() in _PREFIXES:
                            self._blocked = True
                        else:
                            out.append(letters[self._sent :])
                            self._sent = len(letters)
                            self._blocked = not out[-1]
                        break
                if buf[pos].isspace():
                    m = _SPACE.match(buf, pos)
                    assert m is not None
                    if "\n" in m.group():
                        self._prev = ""
                    out.append(m.group())
                    pos = m.end()
                    continue
                m = _PLAIN.match(buf, pos)
                if (
                    m
                    and (buf[m.end() : m.end() + 1].isspace() or (self._final and m.end() == n))
                    and m.end() - pos < _MAX_WORD
                ):
                    word = m.group()
                    if not self._special(word):
                        out.append(word[self._sent :])
                        self._sent = 0
                        self._prev = word
                        pos = m.end()
                        continue
                if not self._final and _WS.search(buf, pos, pos + _MAX_WORD) is None:
                    if n - pos < _MAX_WORD:  # the word at pos is still being written
                        out.append(self._early_letters(buf, pos))
                        self._blocked = not out[-1]
                        break
            words = _Words(buf, pos, self._final)
            try:
                used, said = self._say(words)
            except NeedMore:
                out.append(self._early_letters(buf, pos))
                self._blocked = not out[-1]
                break
            # A word that began with letters sent early reads them as written (see below).
            out.append(said[self._sent :] if said.startswith(buf[pos : pos + self._sent]) else said)
            self._sent = 0
            self._prev = words(used - 1) or ""
            pos = words.end(used)
        else:
            self._blocked = False
        self._buf, self._pos = buf[pos:], 0
        return "".join(out)

    def _early_letters(self, buf: str, pos: int) -> str:
        """The letters of the incomplete word at ``pos`` that can already be sent.

        The sentence buffer confirms a sentence end only when it sees the next word begin, so
        holding "Th" of "Then" until the word is complete would hold the sentence before it
        too. Letters at a word's start are said as written unless they may begin a word with
        a rule of its own (a title, month, abbreviation, am/pm or lexicon entry: their
        prefixes are held); every rule for a word that starts with other letters keeps them,
        so sending them early changes nothing but the timing.
        """
        m = _LETTERS.match(buf, pos, pos + _MAX_WORD - 1)
        if m is None or self.lexicon.has_patterns:
            return ""
        letters = m.group()
        if not letters.isalpha():  # "¼", "²" are word characters but numbers: stop there
            letters = letters[: next(i for i, c in enumerate(letters) if not c.isalpha())]
        if not letters or letters.lower() in _PREFIXES or self.lexicon.is_prefix(letters):
            return ""
        early = letters[self._sent :]
        self._sent = len(letters)
        return early

    def _special(self, word: str) -> bool:
        """Whether a plain-letter word needs a rule: a title, month, abbreviation or entry."""
        _, core, _ = _split(word)
        low = core.lower()
        return (
            low in TITLES
            or low in ABBREVIATIONS
            or low in MONTHS
            or low in CURRENCY_CODES
            or low.rstrip(".") in TIME_SUFFIXES
            or (bool(self.lexicon) and self.lexicon.starts(core))
        )

    # ------------------------------------------------------------------ rules

    def _say(self, words: _Words) -> tuple[int, str]:
        """How many words to consume from the window, and what they are said as."""
        word = words(0)
        assert word is not None
        lead, core, trail = _split(word)
        if self.lexicon:
            found = self._lexicon(words, core)
            if found is not None:
                return found
        low = core.lower()
        bare, bare_trail = _undot(core, trail)
        bare_low = low if bare is core else bare.lower()
        if low not in ABBREVIATIONS and bare_low in ABBREVIATIONS:
            core, trail, low = bare, bare_trail, bare_low  # "24/7." ends a sentence
        if low in TITLES:
            return self._title(words, lead, core, trail)
        if low in ABBREVIATIONS:
            return self._abbreviation(words, lead, low, trail)
        if low in MONTHS and core[:1].isupper():
            return self._month(words, lead, core, trail)
        if core in CURRENCY_CODES and trail == "":
            nxt = words(1)
            if nxt is not None:
                l2, c2, t2 = _split(nxt)
                m = AMOUNT.fullmatch(_undot(c2, t2)[0])
                if m and not m["cur"] and not m["suf"]:
                    c2, t2 = _undot(c2, t2)
                    used, said = self._amount(words, 1, m, t2, code=core)
                    return used, f"{lead}{l2}{said}"
            return 1, lead + CURRENCY_CODES[core][1] + trail
        if bare_low in TIME_SUFFIXES and _has_digit(self._prev):  # "5 pm", "10:30 PM."
            return 1, lead + TIME_SUFFIXES[bare_low] + bare_trail.removeprefix(".")
        return self._token(words, lead, bare, bare_trail)

    def _lexicon(self, words: _Words, core: str) -> tuple[int, str] | None:
        """A user entry: the longest word sequence that matches, else the first pattern."""
        bare = _undot(core, "")[0]
        entries = self.lexicon.candidates(core)
        if bare != core:
            entries = entries + self.lexicon.candidates(bare)
        for entry in entries:
            splits = []
            for k in range(len(entry.words)):
                w = words(k)
                if w is None:
                    break
                splits.append(_split(w))
            if len(splits) < len(entry.words):
                continue
            if any(s[2] for s in splits[:-1]) or any(s[0] for s in splits[1:]):
                continue  # punctuation inside the sequence: not this entry
            cores = [s[1] for s in splits]
            last, trail = cores[-1], splits[-1][2]
            for cores[-1], end in ((last, trail), _undot(last, trail)):
                if self.lexicon.matches(entry, cores):
                    return len(cores), splits[0][0] + entry.said + end
        lead, _, trail = _split(words(0) or "")
        for form, end in ((core, trail), _undot(core, trail)):
            said = self.lexicon.pattern(form)
            if said is not None:
                return 1, lead + said + end
        return None

    def _title(self, words: _Words, lead: str, core: str, trail: str) -> tuple[int, str]:
        """ "Dr. Smith" Doctor Smith, "Elm Dr." Elm Drive: the words around decide."""
        title, place = TITLES[core.lower()]
        prev = self._prev
        after_name = bool(prev) and prev[:1].isupper() and not _SENTENCE_END.search(prev)
        after_number = bool(prev) and prev[-1:].isalpha() and _has_digit(prev)  # "5th St."
        nxt = words(1) if not trail else None
        name_next = nxt is not None and nxt[:1].isupper() and nxt.lower() not in _STARTERS
        if place is not None and (after_number or (after_name and not name_next)):
            end = "." if trail == "" and (nxt is None or nxt[:1].isupper()) else ""
            return 1, f"{lead}{place}{end}{trail}"
        if name_next or place is None:
            return 1, f"{lead}{title}{trail}"
        return 1, f"{lead}{core}{trail}"

    def _abbreviation(self, words: _Words, lead: str, low: str, trail: str) -> tuple[int, str]:
        said = ABBREVIATIONS[low]
        if low.endswith(".") and trail == "":
            nxt = words(1)
            if nxt is None or (nxt[:1].isupper() and nxt.lower() not in ("i",)):
                said += "."  # the period also ended the sentence
        return 1, lead + said + trail

    def _month(self, words: _Words, lead: str, core: str, trail: str) -> tuple[int, str]:
        """ "March 4" March fourth, "Jan. 2024" January twenty twenty-four."""
        month = MONTHS[core.lower()]
        if trail == "":
            nxt = words(1)
            if nxt is not None:
                l2, c2, t2 = _split(nxt)
                c2, t2 = _undot(c2, t2)
                day = _DAY.fullmatch(c2)
                if not l2 and day and 1 <= int(day[1]) <= 31:
                    return 2, f"{lead}{month} {nw.ordinal(day[1])}{t2}"
                if not l2 and re.fullmatch(r"[0-9]{4}", c2):
                    return 2, f"{lead}{month} {nw.year(c2)}{t2}"
        return 1, lead + core + trail

    # ------------------------------------------------------------------ tokens with digits

    def _token(self, words: _Words, lead: str, core: str, trail: str) -> tuple[int, str]:
        if not core:
            return 1, lead + pieces(trail) if only_symbols(trail) else lead + trail
        if "." in core and _INITIALISM.fullmatch(core):
            return 1, lead + core + trail  # "U.S.": engines spell these out themselves
        if ":" in core and (m := TIME.fullmatch(core)) and (said := time_of_day(m)) is not None:
            nxt = words(1) if trail == "" and not m[4] else None
            l2, c2, t2 = _split(nxt) if nxt is not None else ("x", "", "")
            if not l2 and c2.lower() in TIME_SUFFIXES:
                return 2, f"{lead}{time_of_day(m, c2)}{t2}"
            c2, t2 = _undot(c2, t2)
            if not l2 and c2.lower() in TIME_SUFFIXES:  # "PM." ends the sentence too
                return 2, f"{lead}{time_of_day(m, c2)}{t2[1:]}"
            return 1, lead + said + (trail[1:] if said[-1] == trail[:1] == "." else trail)
        if lead[-1:] == "(" and trail[:1] == ")" and re.fullmatch(r"[0-9]{3}", core):
            nxt = words(1)
            if nxt is not None and PHONE.fullmatch(_split(nxt)[1].rstrip(".")):
                return 1, f"{lead}{nw.digits(core)}{trail}"  # an area code: "(555) 123-4567"
        m = AMOUNT.fullmatch(core)
        if m:
            if lead[-1:] in ("'", "’") and (m["suf"] == "s" or len(core) == 2):
                lead = lead[:-1]  # "'90s", "'85"
            used, said = self._amount(words, 0, m, trail)
            return used, lead + said
        said = shape(core, self._prev, _alone)
        if said is None:
            said = pieces(core)
        return 1, lead + said + trail

    def _amount(
        self, words: _Words, k: int, m: re.Match[str], trail: str, code: str = ""
    ) -> tuple[int, str]:
        """A number with what may come with it: currency, scale, unit, month, am/pm."""
        pre, sign, cur, num, suf = m.groups()
        suf = suf or ""
        integer = "." not in num
        used = k + 1
        scale = unit = ""
        money = CURRENCY_SYMBOLS.get(cur[-1]) if cur else None
        if cur in ("US$", "C$", "A$"):
            money = CURRENCY_CODES[cur]
        if code:
            money = CURRENCY_CODES[code]
        head = ""
        if pre:
            head = "number " if pre == "#" else SYMBOLS[pre] + " "
        if sign in ("-", "−"):
            head += "minus "
        elif sign == "+":
            head += "plus "
        # what is written right after the number
        if suf:
            if suf in ("s", "'s", "’s") and integer and not money:
                return used, head + nw.decade(num.replace(",", "")) + trail
            if suf.lower() in ("st", "nd", "rd", "th") and integer and not money:
                return used, head + nw.ordinal(num) + trail
            if suf in SCALES and (money or suf not in ("k", "K", "m")):
                scale = SCALES[suf]
            elif suf in CURRENCY_SYMBOLS and not money:
                money = CURRENCY_SYMBOLS[suf]
            elif suf in UNITS:
                unit = suf
            elif suf.lower() in TIME_SUFFIXES and integer and 1 <= int(num.replace(",", "")) <= 12:
                return used, head + nw.cardinal(num) + " " + TIME_SUFFIXES[suf.lower()] + trail
            elif "/" in suf and suf.split("/")[0] in UNITS:
                a, b = suf.split("/", 1)
                said = self._quantity(num, unit=a)
                per = UNITS[b][0] if b in UNITS else b
                return used, head + f"{said} per {per}" + trail
            else:
                return used, head + nw.number(num) + " " + pieces(suf) + trail
        # what comes in the next word(s)
        if trail == "" and not unit:
            nxt = words(used)
            if nxt is not None:
                l2, c2, t2 = _split(nxt)
                c2, t2 = (
                    _undot(c2, t2)
                    if c2 not in UNITS and c2.lower() not in TIME_SUFFIXES
                    else (c2, t2)
                )
                if (
                    not l2
                    and not scale
                    and c2 in ("thousand", "million", "billion", "trillion")
                    and money
                ):
                    scale, used, trail = c2, used + 1, t2
                    nxt = words(used) if trail == "" else None
                    l2, c2, t2 = _split(nxt) if nxt is not None else ("x", "", "")
                if not l2 and not money and c2 in CURRENCY_CODES:
                    money, used, trail = CURRENCY_CODES[c2], used + 1, t2
                elif not l2 and not money and c2 in UNITS and c2 not in _NOT_SEPARATE_UNITS:
                    unit, used, trail = c2, used + 1, t2
                elif (
                    not l2
                    and not money
                    and not scale
                    and integer
                    and c2.lower() in TIME_SUFFIXES
                    and 1 <= int(num.replace(",", "")) <= 12
                ):
                    said = f"{nw.cardinal(num)} {TIME_SUFFIXES[c2.lower()]}"
                    return used + 1, head + said + (t2[1:] if t2[:1] == "." else t2)
                elif (
                    not l2
                    and not money
                    and not scale
                    and integer
                    and not head
                    and c2.lower() in MONTHS
                    and c2[:1].isupper()
                    and 1 <= int(num.replace(",", "")) <= 31
                ):
                    return used + 1, f"the {nw.ordinal(num)} of {MONTHS[c2.lower()]}{t2}"
        if money:
            return used, head + say_money(num, money, scale) + trail
        said = self._quantity(num, unit=unit, scale=scale, year_ok=not (head or unit or scale))
        return used, head + said + trail

    @staticmethod
    def _quantity(num: str, *, unit: str = "", scale: str = "", year_ok: bool = False) -> str:
        plain = num.replace(",", "")
        if year_ok and len(num) == 4 and plain.isdigit() and 1100 <= int(plain) <= 2099:
            said = nw.year(plain)
        else:
            said = nw.number(num)
        if scale:
            said += " " + scale
        if unit:
            one, many = UNITS[unit]
            said += " " + (one if plain == "1" and not scale else many)
        return said


_NOT_SEPARATE_UNITS = frozenset(["A", "t", "x", "B", "K", "h", "l", "sq", "W", "V", "%"])


def _has_digit(text: str) -> bool:
    return not _DIGITS.isdisjoint(text)


def _alone(m: re.Match[str]) -> str:
    """An amount with no words after it (inside a range or a rate)."""
    _, said = Verbalizer()._amount(_Words("", 0, True), 0, m, "")
    return said


def verbalize(text: str, lexicon: Lexicon | None = None) -> str:
    """Verbalize a whole text at once: ``feed(text) + flush()`` of a fresh verbalizer."""
    v = Verbalizer(lexicon)
    return v.feed(text) + v.flush()


_EASY, _EASY_FINAL = _easy(final=False), _easy(final=True)
