"""Number words for speech: cardinals, decimals, ordinals, years, digits, fractions, money.

num2words spells the numbers; this module decides how a written number is *read*. Its British
style ("one thousand, two hundred and fifty") is turned American ("one thousand two hundred
fifty"): the commas would also be read as pauses, and cut chunks, downstream. Decimals keep
every written digit ("2.50" is "two point five zero"); integers too long to be quantities
(over 15 digits, or with leading zeros) are read digit by digit, which also bounds the work.
"""

from __future__ import annotations

import re
from functools import lru_cache

from num2words import num2words

__all__ = [
    "cardinal",
    "decade",
    "digits",
    "fraction",
    "number",
    "ordinal",
    "plural",
    "year",
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_MAX_CARDINAL_DIGITS = 15  # beyond this a "number" is an ID, a hash or noise: read digits
_AND = re.compile(r",? and |, ")


def _american(words: str) -> str:
    return _AND.sub(" ", words)


def digits(text: str) -> str:
    """Each digit of ``text`` as a word ("007" is "zero zero seven"); non-digits are skipped."""
    return " ".join(DIGIT_WORDS[ord(c) - 48] for c in text if "0" <= c <= "9")


@lru_cache(maxsize=4096)  # answers repeat their numbers; num2words is the costly part
def cardinal(text: str) -> str:
    """An integer written with optional thousands commas ("1,250") as words."""
    plain = text.replace(",", "")
    if not plain.isdigit():
        raise ValueError(f"not an integer: {text!r}")
    if len(plain) > _MAX_CARDINAL_DIGITS or (
        len(plain) > 1 and plain[0] == "0" and "," not in text
    ):
        return digits(plain)
    return _american(num2words(int(plain)))


def number(text: str) -> str:
    """A cardinal or decimal ("2.5", ".75", "1,000.50"): the fraction read digit by digit."""
    whole, _, frac = text.partition(".")
    head = cardinal(whole) if whole else "zero"
    if not frac:
        return head
    return f"{head} point {digits(frac)}"


@lru_cache(maxsize=1024)
def ordinal(text: str) -> str:
    """ "1" is "first", "22" "twenty-second"; long ones fall back to digits and "th"."""
    plain = text.replace(",", "")
    if len(plain) > _MAX_CARDINAL_DIGITS:
        return digits(plain) + "th"
    return _american(num2words(int(plain), to="ordinal"))


def year(text: str) -> str:
    """A year as it is said: "1999" nineteen ninety-nine, "2005" two thousand five, "2030"
    twenty thirty; "1900" nineteen hundred. Other lengths are read as cardinals."""
    n = int(text)
    if len(text) != 4 or text[0] == "0":
        return cardinal(text)
    if 2000 <= n <= 2009:
        return cardinal(text)
    century, rest = divmod(n, 100)
    if rest == 0:
        return f"{cardinal(str(century))} hundred"
    if rest < 10:
        return f"{cardinal(str(century))} oh {DIGIT_WORDS[rest]}"
    return f"{cardinal(str(century))} {cardinal(str(rest))}"


def plural(words: str) -> str:
    """Pluralize the last word: "nineteen ninety" -> "nineteen nineties"."""
    head, _, last = words.rpartition(" ")
    if last.endswith("y"):
        last = last[:-1] + "ies"
    elif last.endswith(("x", "s")):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def decade(text: str) -> str:
    """ "1990" (of "1990s") is "nineteen nineties"; "90" (of "'90s") is "nineties"."""
    if len(text) == 2:
        return plural(cardinal(text))
    if text.endswith("00") and not text.endswith("000"):
        return plural(year(text))  # "1900s": nineteen hundreds
    return plural(year(text))


_DENOMINATORS = {2: ("half", "halves"), 4: ("quarter", "quarters")}


def fraction(numerator: str, denominator: str) -> str:
    """ "1/2" is "one half", "3/4" "three quarters", "5/8" "five eighths"; big ones "a over b"."""
    num, den = int(numerator), int(denominator)
    if den == 0 or den > 100 or len(numerator) > 6:
        return f"{cardinal(numerator)} over {cardinal(denominator)}"
    if den == 1:
        return f"{cardinal(numerator)} over one"
    one, many = _DENOMINATORS.get(den, (None, None))
    if one is None or many is None:
        one = ordinal(denominator)
        many = plural(one)
    return f"{cardinal(numerator)} {one if num == 1 else many}"
