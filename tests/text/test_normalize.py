"""The verbalizer: what the listener hears for numbers, money, dates, units and symbols."""

# ruff: noqa: E501  (the cases read as a table)

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicepipe.errors import ConfigError
from voicepipe.text.lexicon import Lexicon, load_lexicon
from voicepipe.text.normalize import Verbalizer, verbalize

# The README's table ("What the listener hears") is this list.
CASES = [
    # cardinals, decimals, years
    ("About 1,250 people came.", "About one thousand two hundred fifty people came."),
    ("It is 2.5 or 0.75 or 2.50 long.", "It is two point five or zero point seven five or two point five zero long."),
    ("The world has 8.1 billion people.", "The world has eight point one billion people."),
    ("In 1999, 2005 and 2030.", "In nineteen ninety-nine, two thousand five and twenty thirty."),
    ("the 1990s and the '80s", "the nineteen nineties and the eighties"),
    ("Code 007 and 123456789012345678", "Code zero zero seven and one two three four five six seven eight nine zero one two three four five six seven eight"),
    # money
    ("It costs $5.99 today.", "It costs five dollars and ninety-nine cents today."),
    ("€3.50, £1,200, $1 and $0.99", "three euros and fifty cents, one thousand two hundred pounds, one dollar and ninety-nine cents"),
    ("a $1.5 million deal", "a one point five million dollars deal"),
    ("$5M, 100 USD and 50¢", "five million dollars, one hundred US dollars and fifty cents"),
    # percent, ordinals, ranges, fractions
    ("About 50% and -3.5% growth", "About fifty percent and minus three point five percent growth"),
    ("She came 1st, 22nd and 103rd.", "She came first, twenty-second and one hundred third."),
    ("Read pages 10–20 and 10-20 items.", "Read pages ten to twenty and ten to twenty items."),
    ("$5-10 each, 10-20%", "five to ten dollars each, ten to twenty percent"),
    ("Add 1/2 cup, 1 1/2 cups and 3/4 of it.", "Add one half cup, one and one half cups and three quarters of it."),
    # dates and times
    ("On 2024-03-04.", "On March fourth, twenty twenty-four."),
    ("On March 4, 2024.", "On March fourth, twenty twenty-four."),
    ("On 4 March 2024.", "On the fourth of March twenty twenty-four."),
    ("Due 3/4/2024, 25/12/2023 or 2024/03/04.", "Due March fourth, twenty twenty-four, December twenty-fifth, twenty twenty-three or March fourth, twenty twenty-four."),
    ("January 5th", "January fifth"),
    ("At 10:30, 10:00 and 12:05 pm.", "At ten thirty, ten o'clock and twelve oh five p.m."),
    ("At 5 pm or 9:00 AM today.", "At five p.m. or nine a.m. today."),
    # units
    ("It weighs 5 kg and 1 kg.", "It weighs five kilograms and one kilogram."),
    ("At 60 mph, 20°C or 72 °F.", "At sixty miles per hour, twenty degrees Celsius or seventy-two degrees Fahrenheit."),
    ("2 tbsp, 5km, 3.5 GB, 10x faster", "two tablespoons, five kilometers, three point five gigabytes, ten times faster"),
    # phones, emails, domains
    ("Call 555-123-4567 or (555) 123-4567.", "Call five five five, one two three, four five six seven or (five five five) one two three, four five six seven."),
    ("Mail jane.doe@example.com or see docs.python.org.", "Mail jane dot doe at example dot com or see docs dot python dot org."),
    # symbols and math
    ("2+2=4 and a & b, x ≥ 5, 90°", "two plus two equals four and a and b, x greater than or equal to five, ninety degrees"),
    ("C++ and COVID-19, x86, 3D, #1, ~5", "C plus plus and COVID nineteen, x eighty-six, three D, number one, about five"),
    ("Version 1.2.3 at 192.168.1.1", "Version one point two point three at one hundred ninety-two dot one hundred sixty-eight dot one dot one"),
    # abbreviations with context
    ("Dr. Smith lives on Elm Dr. now.", "Doctor Smith lives on Elm Drive now."),
    ("St. Louis is near Elm St. today.", "Saint Louis is near Elm Street today."),
    ("Mr. and Mrs. Jones, e.g. apples, etc. The end.", "Mister and Missus Jones, for example apples, et cetera. The end."),
    ("The U.S. is big.", "The U.S. is big."),
]  # fmt: skip


def stream(parts: list[str], lexicon: Lexicon | None = None) -> str:
    v = Verbalizer(lexicon)
    return "".join(v.feed(p) for p in parts) + v.flush()


def cut(text: str, points: list[int]) -> list[str]:
    edges = [0, *sorted({p % (len(text) + 1) for p in points}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(edges)]


@pytest.mark.parametrize(("text", "said"), CASES)
def test_reads_as_a_person_would(text: str, said: str) -> None:
    assert verbalize(text) == said
    assert stream(list(text)) == said


def test_the_issue_example() -> None:
    text = (
        "It costs $5.99 today. The meeting is at 10:30 on 3/4/2024. "
        "About 50% of 1,250 people came 1st."
    )
    assert verbalize(text) == (
        "It costs five dollars and ninety-nine cents today. The meeting is at ten thirty on "
        "March fourth, twenty twenty-four. About fifty percent of one thousand two hundred "
        "fifty people came first."
    )


def test_plain_letters_pass_at_once_and_what_a_rule_may_change_is_held() -> None:
    v = Verbalizer()
    assert v.feed("Hello wor") == "Hello wor"  # no rule starts with "wor": it is said as written
    assert v.feed("ld, it costs $5") == "ld, it costs "
    assert v.feed(" today") == ""  # the word after a number decides its reading ("million"?)
    assert v.feed(" and") == "five dollars today and"
    assert v.feed(" Dr") == " "  # may be "Dr." (Doctor, Drive): held until the word ends
    assert v.feed(". Smith") == ""  # "Smith" decides between Doctor and Drive
    assert v.flush() == "Doctor Smith"


@pytest.mark.parametrize(
    "text", ["7" * 400, "1.2.3.4", "$$$", "--5", "-" * 300, "$" * 1000, "1," * 300, "9" * 5000]
)
def test_pathological_numbers_are_spoken_or_skipped(text: str) -> None:
    said = verbalize(f"Look: {text} here.")
    assert said.startswith("Look:") and said.endswith("here.")
    assert not re.search(r"\d|\$", said)


def test_linear_holdback_on_a_huge_word() -> None:
    """A megabyte without a space is read in bounded pieces, fed a kilobyte at a time."""
    v = Verbalizer()
    out = [v.feed("x" * 1024) for _ in range(1024)]
    out.append(v.flush())
    assert "".join(out).replace(" ", "") == "x" * 1024 * 1024


# ------------------------------------------------------------------ streaming property

TOKENS = [
    "word", "Hello", " ", "\n", "\n\n", ".", ",", "!", "?", "$", "$5.99", "€3", "1,250", "2.5",
    "1999", "1990s", "50%", "1st", "22nd", "10:30", "pm", "p.m.", "3/4/2024", "1/2", "10-20",
    "–", "kg", "5kg", "mph", "°C", "Dr.", "St.", "Smith", "Elm", "March", "4,", "2024", "May",
    "555-123-4567", "(555)", "a@b.com", "x.org", "+", "=", "&", "#", "~", "million", "USD",
    "e.g.", "etc.", "U.S.", "'", "(", ")", "7", "0", "-", "--", "1.2.3.4", "*", "°", "x", "5",
]  # fmt: skip
texts = st.lists(st.sampled_from(TOKENS), max_size=50).map("".join)
spaced = st.lists(st.sampled_from(TOKENS), max_size=30).map(" ".join)
cuts = st.lists(st.integers(min_value=0, max_value=400), max_size=12)


@settings(max_examples=500, deadline=None)
@given(st.one_of(texts, spaced), cuts)
def test_output_never_depends_on_delta_cuts(text: str, points: list[int]) -> None:
    whole = verbalize(text)
    assert stream(cut(text, points)) == whole
    assert stream(list(text)) == whole


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), cuts)
def test_any_text_is_handled_the_same_however_cut(text: str, points: list[int]) -> None:
    assert stream(cut(text, points)) == verbalize(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(texts, spaced), cuts)
def test_the_fast_paths_say_what_the_rules_loop_says(text: str, points: list[int]) -> None:
    """Without a lexicon, short buffers of plain words are decided by str methods in ``feed``;
    with one, every word goes through the rules loop. An entry that never occurs changes
    nothing said, so the two must agree, whole and however cut."""
    unrelated = Lexicon.from_entries({"zqxjv": "never said"})
    expected = verbalize(text, unrelated)
    assert verbalize(text) == expected
    assert stream(cut(text, points)) == expected
    assert stream(list(text)) == expected


# ------------------------------------------------------------------ lexicon


def test_lexicon_words_sequences_and_patterns(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.txt"
    path.write_text(
        "# names and jargon\n"
        "kubectl = cube control\n"
        "Nginx\tengine x\n"
        "New York City = the big apple   # a comment\n"
        "/v(\\d+)/ = version \\1\n",
        encoding="utf-8",
    )
    lexicon = load_lexicon(path)
    text = "Run Kubectl, then nginx and Nginx. I love New York City! Try v2, v10."
    said = (
        "Run cube control, then nginx and engine x. I love the big apple! "
        "Try version 2, version 10."
    )
    assert verbalize(text, lexicon) == said
    assert stream(list(text), lexicon) == said
    assert verbalize("New York is not the city.", lexicon) == "New York is not the city."


def test_lexicon_comes_before_the_rules() -> None:
    lexicon = Lexicon.from_entries({"Dr.": "Dear", "24/7": "all day, every day"})
    assert verbalize("Dr. Smith is open 24/7.", lexicon) == "Dear Smith is open all day, every day."


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("just words\n", "lexicon.txt:1: expected 'written = said'"),
        ("ok = fine\n = nothing\n", "lexicon.txt:2: an entry needs both"),
        ("/(/ = x\n", "lexicon.txt:1: bad regular expression"),
    ],
)
def test_a_bad_lexicon_line_is_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "lexicon.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_lexicon(path)


def test_a_missing_or_binary_lexicon_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lexicon file not found"):
        load_lexicon(tmp_path / "nope.txt")
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_lexicon(tmp_path / "bin")
