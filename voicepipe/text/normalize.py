"""Streaming text normalization for TTS: numbers, money, dates, units and symbols as words.

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
_LEAD = frozenset("([{\"'“‘«¿¡")
_TRAIL = frozenset(")]}\"'”’»,;:!?…")
_SPACE = re.compile(r"\s+")
_WS = re.compile(r"\s")
# A word spoken as written: letters (and inner apostrophes or hyphens) with prose punctuation.
_PLAIN = re.compile(r"[(\"'“‘]*[^\W\d_]+(?:['’-][^\W\d_]+)*[)\]\"'”’,;:!?…]*\.?")
_SENTENCE_END = re.compile(r"[.!?…][)\]\"'”’]*$")
_STARTERS = frozenset(
    "the a an it this that he she they we i you there here his her its our".split()
)

_NUM = r"(?:[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_CUR = r"(?:US\$|C\$|A\$|[$€£¥₹₩₽₿])"
_AMOUNT = re.compile(
    rf"(?P<pre>[~≈≤≥<>±#])?(?P<sign>[-+−])?(?P<cur>{_CUR})?(?P<num>{_NUM})"
    r"(?P<suf>(?:['’]?s)|[^\W\d_]+(?:/[^\W\d_]+)?|[°℃℉%‰²³µ][^\W\d_]*|[$€£¥₹¢]|a\.m\.|p\.m\.)?"
)
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?((?:[ap]\.?m\.?)|(?:[AP]\.?M\.?))?")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_SLASH_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4}|[0-9]{2})")
_SLASH_YMD = re.compile(r"([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})")
_DOT_DATE = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})")
_PHONE = re.compile(
    r"(?:\+?([0-9]{1,3})[-.])?(\([0-9]{3}\)|[0-9]{3})[-.]([0-9]{3})[-.]([0-9]{4})|([0-9]{3})-([0-9]{4})"
)
_FRACTION = re.compile(r"([0-9]{1,6})/([0-9]{1,6})")
_DOTTED = re.compile(r"[0-9]+(?:\.[0-9]+){2,}")
_RANGE = re.compile(r"(.+?[0-9][^-–—]*)[-–—]+(.*[0-9].*)")
_PER = re.compile(r"(.*[0-9].*?)/([^\W\d_]+)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DOMAIN = re.compile(
    r"(?:[a-z0-9-]+\.)+(?:com|org|net|edu|gov|io|ai|dev|app|co|uk|us|de|fr|info|me|ly|tv|"
    r"xyz|ca|au|jp|cn|in|eu|nl|es|it|ch|se|no|gg|sh|so|to|fm)",
    re.IGNORECASE,
)
_PIECES = re.compile(r"[0-9]+(?:\.[0-9]+)?|[^\W\d_]+|[^\w\s]+|_+")
_MONEY_CODE_BEFORE = re.compile(rf"{_NUM}")
_INITIALISM = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")
_LETTERS = re.compile(r"[^\W\d_]+")
_DAY = re.compile(r"([0-9]{1,2})(st|nd|rd|th)?")


def _prefixes(*tables: object) -> frozenset[str]:
    keys = [str(k).lower() for table in tables for k in table]  # type: ignore[attr-defined]
    return frozenset(k[:i] for k in keys for i in range(1, len(k) + 1))


_PREFIXES = _prefixes(TITLES, ABBREVIATIONS, MONTHS, CURRENCY_CODES, TIME_SUFFIXES)


class _NeedMore(Exception):
    """A rule needs a word that is not complete yet."""


def _split(word: str) -> tuple[str, str, str]:
    """Leading and trailing punctuation apart from the core: '("$5,")' -> '("', '$5', '",)'."""
    i, j = 0, len(word)
    while i < j and word[i] in _LEAD:
        i += 1
    while j > i and word[j - 1] in _TRAIL:
        j -= 1
    return word[:i], word[i:j], word[j:]


def _undot(core: str, trail: str) -> tuple[str, str]:
    """Move a sentence-final period run from the core to the trailing punctuation."""
    stripped = core.rstrip(".")
    if stripped and stripped != core:
        return stripped, core[len(stripped) :] + trail
    return core, trail


class _Words:
    """The words from ``pos`` on, each complete or not asked for; None past a line break."""

    def __init__(self, buf: str, pos: int, final: bool) -> None:
        self.buf, self.final = buf, final
        self.spans: list[tuple[int, int]] = []
        self._next = pos  # where the next word starts (or whitespace before it)

    def __call__(self, k: int) -> str | None:
        while len(self.spans) <= k:
            if not self._scan():
                return None
        start, end = self.spans[k]
        return self.buf[start:end]

    def _scan(self) -> bool:
        buf, start = self.buf, self._next
        if self.spans:
            m = _SPACE.match(buf, start)
            gap = m.group() if m else ""
            if "\n" in gap:
                return False
            start += len(gap)
            if start >= len(buf):
                if self.final:
                    return False
                raise _NeedMore
        m = _WS.search(buf, start, start + _MAX_WORD)
        if m:
            end = m.start()
        elif len(buf) - start >= _MAX_WORD:
            end = start + _MAX_WORD
        elif self.final:
            end = len(buf)
        else:
            raise _NeedMore
        self.spans.append((start, end))
        self._next = end
        return True

    def end(self, n: int) -> int:
        return self.spans[n - 1][1]


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
        """Add text; return what is now decided (possibly "")."""
        self._buf += delta
        if self._blocked and not _WS.search(delta):
            return ""  # nothing can be decided: no word ended (keeps the stage linear)
        return self._run()

    def flush(self) -> str:
        """End of text: return the rest, then start afresh."""
        self._final = True
        text = self._run()
        self._reset()
        return text

    def _run(self) -> str:
        out: list[str] = []
        buf, pos, n = self._buf, self._pos, len(self._buf)
        while pos < n:
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
            except _NeedMore:
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
        if low not in ABBREVIATIONS and bare.lower() in ABBREVIATIONS:
            core, trail, low = bare, bare_trail, bare.lower()  # "24/7." ends a sentence
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
                m = _AMOUNT.fullmatch(_undot(c2, t2)[0])
                if m and not m["cur"] and not m["suf"]:
                    c2, t2 = _undot(c2, t2)
                    used, said = self._amount(words, 1, m, t2, code=core)
                    return used, f"{lead}{l2}{said}"
            return 1, lead + CURRENCY_CODES[core][1] + trail
        if bare.lower() in TIME_SUFFIXES and _has_digit(self._prev):  # "5 pm", "10:30 PM."
            return 1, lead + TIME_SUFFIXES[bare.lower()] + bare_trail.removeprefix(".")
        core, trail = _undot(core, trail)
        return self._token(words, lead, core, trail)

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
            return 1, lead + _symbols_only(trail) if _only_symbols(trail) else lead + trail
        if _INITIALISM.fullmatch(core):
            return 1, lead + core + trail  # "U.S.": engines spell these out themselves
        if (m := _TIME.fullmatch(core)) and (said := _time(m)) is not None:
            nxt = words(1) if trail == "" and not m[4] else None
            l2, c2, t2 = _split(nxt) if nxt is not None else ("x", "", "")
            if not l2 and c2.lower() in TIME_SUFFIXES:
                return 2, f"{lead}{_time(m, c2)}{t2}"
            c2, t2 = _undot(c2, t2)
            if not l2 and c2.lower() in TIME_SUFFIXES:  # "PM." ends the sentence too
                return 2, f"{lead}{_time(m, c2)}{t2[1:]}"
            return 1, lead + said + (trail[1:] if said[-1] == trail[:1] == "." else trail)
        if lead[-1:] == "(" and trail[:1] == ")" and re.fullmatch(r"[0-9]{3}", core):
            nxt = words(1)
            if nxt is not None and _PHONE.fullmatch(_split(nxt)[1].rstrip(".")):
                return 1, f"{lead}{nw.digits(core)}{trail}"  # an area code: "(555) 123-4567"
        m = _AMOUNT.fullmatch(core)
        if m:
            if lead[-1:] in ("'", "’") and (m["suf"] == "s" or len(core) == 2):
                lead = lead[:-1]  # "'90s", "'85"
            used, said = self._amount(words, 0, m, trail)
            return used, lead + said
        said = _shape(core, self._prev)
        if said is None:
            said = _pieces(core)
        return 1, lead + said + trail

    def _amount(
        self, words: _Words, k: int, m: re.Match[str], trail: str, code: str = ""
    ) -> tuple[int, str]:
        """A number with what may come with it: currency, scale, unit, month, am/pm."""
        pre, sign, cur, num, suf = m["pre"], m["sign"], m["cur"], m["num"], m["suf"] or ""
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
                return used, head + nw.number(num) + " " + _pieces(suf) + trail
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
            return used, head + _money(num, money, scale) + trail
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
    return any(c in _DIGITS for c in text)


def _money(num: str, names: tuple[str, str, str, str], scale: str) -> str:
    one, many, minor_one, minor_many = names
    if scale:
        return f"{nw.number(num)} {scale} {many}"
    whole, _, cents = num.partition(".")
    whole_plain = whole.replace(",", "") or "0"
    if cents and (len(cents) != 2 or not minor_one):
        return f"{nw.number(num)} {many}"
    parts = []
    if int(whole_plain) or not cents or int(cents) == 0:
        parts.append(f"{nw.cardinal(whole or '0')} {one if whole_plain == '1' else many}")
    if cents and int(cents):
        parts.append(f"{nw.cardinal(str(int(cents)))} {minor_one if cents == '01' else minor_many}")
    return " and ".join(parts)


def _only_symbols(text: str) -> bool:
    return bool(text) and not any(c.isalnum() for c in text)


def _symbols_only(text: str) -> str:
    return _pieces(text)


def _time(m: re.Match[str], suffix: str | None = None, *, bare: bool = False) -> str | None:
    """H:MM[:SS][am|pm]; ``suffix`` is an am/pm written as the next word."""
    hour, minute, second = int(m[1]), int(m[2]), m[3]
    suffix = suffix or m[4]
    if hour > 24 or minute > 59 or (second is not None and int(second) > 59):
        return None
    h = nw.cardinal(str(hour))
    if minute == 0:
        said = h if suffix or bare else f"{h} o'clock" if hour <= 12 else f"{h} hundred"
    elif minute < 10:
        said = f"{h} oh {nw.DIGIT_WORDS[minute]}"
    else:
        said = f"{h} {nw.cardinal(str(minute))}"
    if second is not None and int(second):
        said += f" and {nw.cardinal(str(int(second)))} seconds"
    if suffix:
        said += " " + TIME_SUFFIXES[suffix.lower().replace(".", "")].replace("..", ".")
    return said


def _date(year: str, month: int, day: int) -> str | None:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    name = list(dict.fromkeys(MONTHS.values()))[month - 1]
    said_year = nw.year(year) if len(year) == 4 else _two_digit_year(year)
    return f"{name} {nw.ordinal(str(day))}, {said_year}"


def _two_digit_year(yy: str) -> str:
    return f"oh {nw.DIGIT_WORDS[int(yy)]}" if yy[0] == "0" else nw.cardinal(yy)


def _phone(m: re.Match[str]) -> str:
    groups = [g.strip("()") for g in m.groups() if g]
    return ", ".join(nw.digits(g) for g in groups)


def _shape(core: str, prev: str) -> str | None:
    """Whole-token shapes: times, dates, phones, fractions, ranges, versions, emails."""
    if (m := _ISO_DATE.fullmatch(core)) and (d := _date(m[1], int(m[2]), int(m[3]))):
        return d
    if m := _SLASH_DATE.fullmatch(core):
        a, b = int(m[1]), int(m[2])
        month, day = (b, a) if a > 12 else (a, b)
        if d := _date(m[3], month, day):
            return d
    if (m := _SLASH_YMD.fullmatch(core)) and (d := _date(m[1], int(m[2]), int(m[3]))):
        return d
    if (m := _DOT_DATE.fullmatch(core)) and (d := _date(m[3], int(m[2]), int(m[1]))):
        return d
    if m := _PHONE.fullmatch(core):
        return _phone(m)
    if re.fullmatch(r"\([0-9]{3}\)", core):
        return f"({nw.digits(core)})"
    if m := _FRACTION.fullmatch(core):
        said = nw.fraction(m[1], m[2])
        if prev.isdigit() and int(m[1]) < int(m[2]):
            return "and " + said  # "1 1/2": one and one half
        return said
    if _DOTTED.fullmatch(core):
        parts = core.split(".")
        ip = len(parts) == 4 and all(len(p) <= 3 and int(p) <= 255 for p in parts)
        return (" dot " if ip else " point ").join(
            nw.cardinal(p) if len(p) <= 3 else nw.digits(p) for p in parts
        )
    if _EMAIL.fullmatch(core):
        user, _, host = core.partition("@")
        return f"{_pieces(user)} at {_domain(host)}"
    if _DOMAIN.fullmatch(core):
        return _domain(core)
    if m := _RANGE.fullmatch(core):
        t1, t2 = _TIME.fullmatch(m[1]), _TIME.fullmatch(m[2])
        if t1 and t2 and (start := _time(t1, bare=True)) and (end := _time(t2, bare=True)):
            return f"{start} to {end}"  # "12:00-1:00": twelve to one
        lo, hi = _AMOUNT.fullmatch(m[1]), _AMOUNT.fullmatch(m[2])
        if lo and hi and lo["cur"] and not (hi["cur"] or lo["sign"] or lo["pre"]):
            # "$5-10": five to ten dollars, the currency said once, at the end
            lo = _AMOUNT.fullmatch(m[1][len(lo["cur"]) :])
            hi = _AMOUNT.fullmatch(m[1][: -len(lo["num"] if lo else "")] + m[2])
        if lo and hi and not lo["sign"]:
            return f"{_alone(lo)} to {_alone(hi)}"
    if m := _PER.fullmatch(core):
        amount = _AMOUNT.fullmatch(m[1])
        if amount:
            per = UNITS[m[2]][0] if m[2] in UNITS else m[2]
            return f"{_alone(amount)} per {per}"
    return None


def _alone(m: re.Match[str]) -> str:
    """An amount with no words after it (inside a range or a rate)."""
    _, said = Verbalizer()._amount(_Words("", 0, True), 0, m, "")
    return said


def _domain(host: str) -> str:
    return " dot ".join(_pieces(p) for p in host.split("."))


def _pieces(text: str) -> str:
    """Anything else: digits as numbers, letters as written, symbols by name, runs skipped."""
    tokens = [m.group() for m in _PIECES.finditer(text)]
    out: list[str] = []
    for i, tok in enumerate(tokens):
        before = tokens[i - 1] if i else ""
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok[0] in _DIGITS:
            out.append(nw.number(tok) if len(tok) <= 16 else nw.digits(tok))
        elif tok[0].isalpha():
            if out and out[-1].endswith(("-", "'", "’")):
                out[-1] += tok
            else:
                out.append(tok)
        elif tok in SYMBOLS and len(tok) > 1:
            out.append(SYMBOLS[tok])
        elif len(tok) >= 3 and len(set(tok)) == 1:
            continue  # "$$$", "===": decoration, not words
        elif tok in ("-", "–", "—", "−"):
            if before[:1].isalpha() and after[:1].isalpha() and tok == "-":
                out[-1] += "-"
            elif after[:1] in _DIGITS and after[:1] != "" and not before[:1].isalnum():
                out.append("minus")
        elif tok in ("'", "’") and before[:1].isalpha() and after[:1].isalpha():
            out[-1] += tok
        elif tok == "." and before[:1].isalnum() and after[:1].isalnum():
            out.append("dot")
        else:
            for c in tok:
                said = SYMBOLS.get(c, "")
                if said.strip():
                    out.append(said)
    return " ".join(out)


def verbalize(text: str, lexicon: Lexicon | None = None) -> str:
    """Verbalize a whole text at once: ``feed(text) + flush()`` of a fresh verbalizer."""
    v = Verbalizer(lexicon)
    return v.feed(text) + v.flush()
