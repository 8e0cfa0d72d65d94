"""A user lexicon: how names, jargon and patterns are said, ahead of every built-in rule.

A file has one entry a line, ``written = said`` (or ``written<TAB>said``); blank lines and
``#`` comments are skipped::

    kubectl = cube control          # all lowercase: matches any case
    Nginx = engine x                # has a capital: matches this case only
    New York City = the big apple   # several words match in a row
    /v(\\d+)/ = version \\1           # a regular expression over one word (without the
                                    # punctuation around it); \\1 is its first group

Entries are matched against whole words, so "cat = dog" leaves "catalog" alone; what they
say is passed to the TTS as written. Why words and not substrings: the verbalizer streams
word by word, and a word-level match is decided as soon as the word is complete.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from voicepipe.errors import ConfigError

__all__ = ["Lexicon", "load_lexicon"]


@dataclass(frozen=True)
class _Entry:
    words: tuple[str, ...]
    said: str
    exact_case: bool


@dataclass
class Lexicon:
    """Words (or word sequences) and single-word patterns, each with what is said instead."""

    _words: dict[str, list[_Entry]] = field(default_factory=dict)
    _patterns: list[tuple[re.Pattern[str], str]] = field(default_factory=list)

    @classmethod
    def from_entries(cls, entries: Mapping[str, str] | Iterable[tuple[str, str]]) -> Lexicon:
        """``{"kubectl": "cube control", "/v(\\d+)/": "version \\1"}`` as a lexicon."""
        lexicon = cls()
        items = entries.items() if isinstance(entries, Mapping) else entries
        for written, said in items:
            lexicon.add(written, said)
        return lexicon

    def add(self, written: str, said: str) -> None:
        """Add one entry; ``/regex/`` is a pattern. :raises ValueError: an unusable entry."""
        written, said = written.strip(), said.strip()
        if not written or not said:
            raise ValueError("an entry needs both the written form and what is said")
        if len(written) > 2 and written.startswith("/") and written.endswith("/"):
            try:
                pattern = re.compile(written[1:-1])
            except re.error as exc:
                raise ValueError(f"bad regular expression {written}: {exc}") from None
            self._patterns.append((pattern, said))
            return
        words = tuple(written.split())
        exact = any(c.isupper() for c in written)
        entry = _Entry(words if exact else tuple(w.lower() for w in words), said, exact)
        bucket = self._words.setdefault(words[0].lower(), [])
        bucket.append(entry)
        bucket.sort(key=lambda e: -len(e.words))  # the longest sequence wins

    def __bool__(self) -> bool:
        return bool(self._words or self._patterns)

    def starts(self, word: str) -> bool:
        """Whether an entry may begin at ``word`` (so the verbalizer must look at it)."""
        return word.lower() in self._words or bool(self._patterns)

    @property
    def has_patterns(self) -> bool:
        return bool(self._patterns)

    def is_prefix(self, letters: str) -> bool:
        """Whether ``letters`` may begin a word an entry starts with."""
        low = letters.lower()
        return any(key.startswith(low) for key in self._words)

    def candidates(self, word: str) -> list[_Entry]:
        return self._words.get(word.lower(), [])

    @staticmethod
    def matches(entry: _Entry, words: list[str]) -> bool:
        if entry.exact_case:
            return tuple(words) == entry.words
        return tuple(w.lower() for w in words) == entry.words

    def pattern(self, word: str) -> str | None:
        """What the first pattern that matches all of ``word`` says, or None."""
        for regex, said in self._patterns:
            m = regex.fullmatch(word)
            if m:
                try:
                    return m.expand(said)
                except (re.error, IndexError):
                    return said
        return None


def load_lexicon(path: str | Path) -> Lexicon:
    """Read a lexicon file. :raises ConfigError: a missing file or a bad line, named."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"lexicon file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"lexicon {path} is not UTF-8 text; convert it first") from None
    except OSError as exc:
        raise ConfigError(f"cannot read lexicon {path}: {exc.strerror}") from None
    lexicon = Lexicon()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "\t" in line:
            written, _, said = line.partition("\t")
        elif " = " in line or "=" in line:
            written, _, said = line.partition(" = " if " = " in line else "=")
        else:
            raise ConfigError(f"{path}:{number}: expected 'written = said', got {line[:40]!r}")
        said = said.split(" #", 1)[0]
        try:
            lexicon.add(written, said)
        except ValueError as exc:
            raise ConfigError(f"{path}:{number}: {exc}") from None
    return lexicon
