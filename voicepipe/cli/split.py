"""`voicepipe split`: show how text on stdin is cut into chunks for speech."""

from __future__ import annotations

import argparse
import codecs
import json
import re
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

from voicepipe.cli.common import add_lexicon_option
from voicepipe.errors import ConfigError
from voicepipe.text.sentences import CHUNKINGS


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "split",
        help="show how text on stdin is cut into chunks",
        description="Feed stdin to the sentence buffer the way an LLM streams (word-sized "
        "pieces, or N characters at a time) and print each chunk it releases on a line.",
    )
    p.add_argument(
        "--mode",
        choices=("sentences", "speech"),
        default="sentences",
        help="sentences: plain sentence boundaries; speech: what would be sent to the TTS "
        "(markdown gone; numbers, money, dates, units and symbols as words)",
    )
    p.add_argument(
        "--chunking", choices=CHUNKINGS, default="adaptive", help="policy for --mode speech"
    )
    p.add_argument("--json", action="store_true", help='print {"text": ...} per chunk')
    add_lexicon_option(p)
    p.add_argument("--chunk-chars", type=int, metavar="N", help="feed N characters at a time")
    p.set_defaults(run=run, is_async=False, needs_prompt=False)


_WORDS = re.compile(r"\s*\S+|\s+$")


def _pieces(stream: BinaryIO, chunk_chars: int | None) -> Iterator[str]:
    """Stdin as an LLM would stream it: word-sized pieces, or fixed-size character runs."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    offset = 0
    pending = ""
    while True:
        data = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not data:
            break
        try:
            pending += decoder.decode(data)
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"stdin is not valid UTF-8 (byte {offset + exc.start}); convert it first, "
                "e.g. with iconv"
            ) from exc
        offset += len(data)
        if chunk_chars:
            while len(pending) >= chunk_chars:
                yield pending[:chunk_chars]
                pending = pending[chunk_chars:]
        else:
            # Keep the last (possibly incomplete) word for the next read.
            cut = len(pending.rstrip()) if pending[-1:].isspace() else pending.rfind(" ")
            head, pending = (pending[:cut], pending[cut:]) if cut > 0 else ("", pending)
            yield from (m.group() for m in _WORDS.finditer(head))
    if chunk_chars:
        if pending:
            yield pending
    else:
        yield from (m.group() for m in _WORDS.finditer(pending))


def run(args: argparse.Namespace) -> int:
    from voicepipe.text.lexicon import load_lexicon
    from voicepipe.text.sentences import SentenceBuffer
    from voicepipe.text.speech import SpeechNormalizer

    if args.chunk_chars is not None and args.chunk_chars < 1:
        raise ConfigError("--chunk-chars must be at least 1")
    speech = args.mode == "speech"
    buffer = SentenceBuffer(args.chunking if speech else "sentence")
    lexicon = load_lexicon(args.lexicon) if args.lexicon else None
    if lexicon is not None and not speech:
        raise ConfigError("--lexicon applies to --mode speech")
    normalizer = SpeechNormalizer(lexicon=lexicon) if speech else None

    def emit(chunks: list[str]) -> None:
        for chunk in chunks:
            print(json.dumps({"text": chunk}, ensure_ascii=False) if args.json else chunk)
        sys.stdout.flush()

    for piece in _pieces(sys.stdin.buffer, args.chunk_chars):
        emit(buffer.feed(normalizer.feed(piece) if normalizer else piece))
    if normalizer:
        emit(buffer.feed(normalizer.flush()))
    emit(buffer.flush())
    return 0
