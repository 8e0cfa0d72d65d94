from __future__ import annotations

import itertools
import re
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicepipe.text.sentences import SentenceBuffer
from voicepipe.text.speech import CODE_MENTION, SpeechNormalizer, to_speech


def stream(
    parts: list[str], code_blocks: Literal["skip", "mention"] = "mention", verbalize: bool = False
) -> str:
    """The markdown cases here run without the verbalizer (tests/text/test_normalize.py)."""
    normalizer = SpeechNormalizer(code_blocks=code_blocks, verbalize=verbalize)
    return "".join(normalizer.feed(p) for p in parts) + normalizer.flush()


def cut(text: str, points: list[int]) -> list[str]:
    edges = [0, *sorted({p % (len(text) + 1) for p in points}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(edges)]


CASES = [
    # inline emphasis, code, links, images
    ("Some **bold**, *italic*, __strong__, _em_ and ~~gone~~ words.",
     "Some bold, italic, strong, em and gone words."),
    ("Use `pip install x` or ``a ` b``.", "Use pip install x or a b."),
    ("See [the docs](https://docs.python.org/3/) now.", "See the docs now."),
    ("Ref [text][1] here.", "Ref text here."),
    ("An ![a cat](cat.png) image.", "An image."),
    ("snake_case, 2*3, 4 * 5 and a*b*c stay.", "snake_case, 2*3, 4 * 5 and abc stay."),
    (r"Escaped \*stars\* and \_under\_.", "Escaped *stars* and _under_."),
    ("Price ~5 dollars.", "Price ~5 dollars."),
    # URLs become their host; sentence punctuation after them survives
    ("Go to https://docs.python.org/3/library/re.html. Then rest.",
     "Go to docs.python.org. Then rest."),
    ("Try https://www.example.com, or http://x.io:8080/a?b=1#c!", "Try example.com, or x.io!"),
    ("Wiki (https://en.wikipedia.org/wiki/Foo_(bar)).", "Wiki (en.wikipedia.org)."),
    ("Visit www.github.com/x/y today.", "Visit github.com today."),
    ("[https://a.com/b](https://a.com/b) ok", "a.com ok"),
    ("Mail jane@example.com or see example.com.", "Mail jane@example.com or see example.com."),
    ("what http is", "what http is"),
    # emoji
    ("Great job 🎉! Family 👨\u200d👩\u200d👧 here 👍🏽. Done ✅.",
     "Great job! Family here. Done."),
    ("🚀 Launch", "Launch"),
    # block structure
    ("# Title\n\nText here.", "Title.\n\nText here."),
    ("## Already done?\nYes", "Already done?\nYes"),
    ("Items:\n- one\n- two\n* three\n+ four", "Items:\none.\ntwo.\nthree.\nfour."),
    ("Steps:\n1. First step\n2) Second step.\n10. Tenth",
     "Steps:\nFirst step.\nSecond step.\nTenth."),
    ("- [ ] todo\n- [x] done", "todo.\ndone."),
    ("**Summary**\n\nAll good", "Summary.\n\nAll good"),
    ("Line one\nline two", "Line one\nline two"),
    ("> quoted **text**\n> more", "quoted text\nmore"),
    ("Above\n\n---\n\nBelow", "Above.\n\nBelow"),
    ("| Name | Age |\n|------|:---:|\n| Alice | 30 |\n| Bob | |",
     "Name, Age.\nAlice, 30.\nBob."),
    ("2024 was a year.", "2024 was a year."),
    ("#hashtag here", "#hashtag here"),
    # code blocks
    ("Run this:\n```python\nprint('hi')\n```\nDone.", f"Run this:\n{CODE_MENTION}.\n\nDone."),
    ("Example\n~~~\ncode\n~~~\nAfter", f"Example.\n{CODE_MENTION}.\n\nAfter"),
    ("Unclosed\n```\ncode forever", f"Unclosed.\n{CODE_MENTION}."),
    ("- item\n  ```sh\n  ls\n  ```\n- next", f"item.\n{CODE_MENTION}.\n\nnext."),
    ("", ""),
    ("  \n\n ", ""),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_normalizes(text: str, expected: str) -> None:
    assert to_speech(text, verbalize=False) == expected
    assert stream(list(text)) == expected


def test_code_blocks_skip() -> None:
    assert to_speech("Run:\n```\nls -la\n```\nDone.", code_blocks="skip") == "Run:\n\nDone."


def test_markdown_then_words() -> None:
    """By default the verbalizer reads the cleaned text: markdown goes, numbers become words."""
    text = "**Price:** $5.99 at [the shop](https://shop.example.com/x) on 3/4/2024."
    said = (
        "Price: five dollars and ninety-nine cents at the shop on March fourth, twenty twenty-four."
    )
    assert to_speech(text) == said
    assert stream(list(text), verbalize=True) == said


def test_holdback_is_small() -> None:
    """Plain words come out as they arrive; only undecided markup is held."""
    normalizer = SpeechNormalizer(verbalize=False)
    assert normalizer.feed("Hello wor") == "Hello wor"
    assert normalizer.feed("ld **bo") == "ld bo"  # "**" is settled by the next character
    assert normalizer.feed("ld** and ") == "ld and"  # trailing space waits for the next word
    assert normalizer.feed("ht") == ""  # could be "https://"
    assert normalizer.feed("ml") == " html"
    assert normalizer.feed(" see https://docs.python.org/3") == " see docs.python.org"
    assert normalizer.feed("/x. Next") == ". Next"
    assert normalizer.flush() == ""


def test_reusable_after_flush() -> None:
    normalizer = SpeechNormalizer(verbalize=False)
    assert normalizer.feed("- item") == "item"
    assert normalizer.flush() == "."
    assert normalizer.feed("plain") == "plain"
    assert normalizer.flush() == ""


def test_feeds_sentence_buffer() -> None:
    text = "## Plan\n\nHere is **the** plan, in short:\n\n1. Install it\n2. Run it\n\nDone!"
    normalizer, buffer = SpeechNormalizer(verbalize=False), SentenceBuffer("sentence")
    chunks: list[str] = []
    for ch in text:
        chunks += buffer.feed(normalizer.feed(ch))
    chunks += buffer.feed(normalizer.flush()) + buffer.flush()
    assert chunks == ["Plan.", "Here is the plan, in short:", "Install it.", "Run it.", "Done!"]


# ------------------------------------------------------------------ properties

MARKDOWN = [
    "word", "Hello", " ", " ", "\n", "\n\n", "*", "**", "_", "__", "~~", "~", "`", "```",
    "```py\n", "~~~\n", "#", "## ", "- ", "* ", "+ ", "1. ", "2) ", "[", "]", "(", ")", "](",
    "![", "|", "|---|", ":", ".", "!", "?", "https://", "http://", "www.", "docs.python.org",
    "/path", "🎉", "👍🏽", "\u200d", ">", "> ", "\\", "h", "w", "ht", "tp", "s:", "//", "x.com",
    ",", "-", "---", "[ ] ", "\t", "é", "  ", "a_b", "3", "$5.99", "1,250", "10:30", "Dr.", "%",
]  # fmt: skip
markdown = st.lists(st.sampled_from(MARKDOWN), max_size=60).map("".join)
cuts = st.lists(st.integers(min_value=0, max_value=500), max_size=12)


@settings(max_examples=400, deadline=None)
@given(markdown, cuts, st.sampled_from(["skip", "mention"]), st.booleans())
def test_output_never_depends_on_delta_cuts(
    text: str, points: list[int], code_blocks: Literal["skip", "mention"], verbalize: bool
) -> None:
    whole = to_speech(text, code_blocks=code_blocks, verbalize=verbalize)
    assert stream(cut(text, points), code_blocks, verbalize) == whole
    assert stream(list(text), code_blocks, verbalize) == whole


# A document generator that knows which words must be spoken: every word once, in order.
# ("http"/"https" before a ":" are prose, said as written, not a URL: not words of this test.)
word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=7).filter(
    lambda w: w not in ("http", "https")
)


@st.composite
def inline(draw: st.DrawFn) -> tuple[str, list[str]]:
    w = draw(word)
    kind = draw(st.integers(0, 11))
    if kind == 0:
        mark = draw(st.sampled_from(["*", "**", "_", "__", "~~", "***"]))
        return f"{mark}{w}{mark}", [w]
    if kind == 1:
        v = draw(word)
        return f"`{w} {v}`", [w, v]
    if kind == 2:
        v = draw(word)
        return f"[{w} {v}](https://{draw(word)}.com/{draw(word)})", [w, v]
    if kind == 3:
        return f"![{w}]({draw(word)}.png)", []
    if kind == 4:
        host, path = draw(word), draw(word)
        return f"https://{host}.{w}.org/{path}/x.html", [host, w, "org"]
    if kind == 5:
        return draw(st.sampled_from(["🎉", "👍🏽", "👨\u200d👩\u200d👧", "✅", "🇫🇷"])), []
    if kind == 6:
        return f"({w})", [w]
    return w, [w]


@st.composite
def block(draw: st.DrawFn) -> tuple[str, list[str]]:
    items = draw(st.lists(inline(), min_size=1, max_size=6))
    line = " ".join(t for t, _ in items) + draw(st.sampled_from(["", ".", "!", ":"]))
    spoken = [w for _, ws in items for w in ws]
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return "#" * draw(st.integers(1, 4)) + " " + line, spoken
    if kind == 1:
        marker = draw(st.sampled_from(["- ", "* ", "+ ", "1. ", "12) ", "  - "]))
        return marker + line, spoken
    if kind == 2:
        cells = draw(st.lists(word, min_size=1, max_size=3))
        row = "| " + " | ".join(cells) + " |"
        return row + "\n|" + "---|" * len(cells) + "\n" + row, cells + cells
    if kind == 3:
        return "```\n" + line + "\n```", []
    if kind == 4:
        return "> " + line, spoken
    return line, spoken


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(block(), st.sampled_from(["\n", "\n\n"])), max_size=6), cuts)
def test_every_word_spoken_once_in_order(
    blocks: list[tuple[tuple[str, list[str]], str]], points: list[int]
) -> None:
    text = "".join(b + sep for (b, _), sep in blocks)
    expected = [w for (_, ws), _ in blocks for w in ws]
    out = stream(cut(text, points), "skip")
    assert re.findall(r"[a-z]+", out) == expected
    assert not re.search(r"[*`#|\[\]]|https?:|🎉|👍", out)
