"""How one written token is read when no words around it matter: times, dates, phone numbers,
fractions, ranges, versions and addresses, emails and domains, money, and symbols by name.

The verbalizer (``normalize``) decides which words go together and what context says ("Dr."
before a name, a unit after a number); once a token stands alone, these pure functions say it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from voicepipe.text import numbers as nw
from voicepipe.text.tables import MONTHS, SYMBOLS, TIME_SUFFIXES, UNITS

__all__ = ["AMOUNT", "PHONE", "TIME", "only_symbols", "pieces", "say_money", "shape", "time_of_day"]

_DIGITS = frozenset("0123456789")
_NUM = r"(?:[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_CUR = r"(?:US\$|C\$|A\$|[$€£¥₹₩₽₿])"
AMOUNT = re.compile(
    rf"(?P<pre>[~≈≤≥<>±#])?(?P<sign>[-+−])?(?P<cur>{_CUR})?(?P<num>{_NUM})"
    r"(?P<suf>(?:['’]?s)|[^\W\d_]+(?:/[^\W\d_]+)?|[°℃℉%‰²³µ][^\W\d_]*|[$€£¥₹¢]|a\.m\.|p\.m\.)?"
)
TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?((?:[ap]\.?m\.?)|(?:[AP]\.?M\.?))?")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_SLASH_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4}|[0-9]{2})")
_SLASH_YMD = re.compile(r"([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})")
_DOT_DATE = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})")
PHONE = re.compile(
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


def say_money(num: str, names: tuple[str, str, str, str], scale: str) -> str:
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


def only_symbols(text: str) -> bool:
    return bool(text) and not any(c.isalnum() for c in text)


def time_of_day(m: re.Match[str], suffix: str | None = None, *, bare: bool = False) -> str | None:
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


def shape(core: str, prev: str, alone: Callable[[re.Match[str]], str]) -> str | None:
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
    if m := PHONE.fullmatch(core):
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
        return f"{pieces(user)} at {_domain(host)}"
    if _DOMAIN.fullmatch(core):
        return _domain(core)
    if m := _RANGE.fullmatch(core):
        t1, t2 = TIME.fullmatch(m[1]), TIME.fullmatch(m[2])
        start = time_of_day(t1, bare=True) if t1 else None
        end = time_of_day(t2, bare=True) if t2 else None
        if start and end:
            return f"{start} to {end}"  # "12:00-1:00": twelve to one
        lo, hi = AMOUNT.fullmatch(m[1]), AMOUNT.fullmatch(m[2])
        if lo and hi and lo["cur"] and not (hi["cur"] or lo["sign"] or lo["pre"]):
            # "$5-10": five to ten dollars, the currency said once, at the end
            lo = AMOUNT.fullmatch(m[1][len(lo["cur"]) :])
            hi = AMOUNT.fullmatch(m[1][: -len(lo["num"] if lo else "")] + m[2])
        if lo and hi and not lo["sign"]:
            return f"{alone(lo)} to {alone(hi)}"
    if m := _PER.fullmatch(core):
        amount = AMOUNT.fullmatch(m[1])
        if amount:
            per = UNITS[m[2]][0] if m[2] in UNITS else m[2]
            return f"{alone(amount)} per {per}"
    return None


def _domain(host: str) -> str:
    return " dot ".join(pieces(p) for p in host.split("."))


def pieces(text: str) -> str:
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
