#!/usr/bin/env python3
"""What the listener hears: the speech text stage's throughput, and how much it leaves unsaid.

    scripts/bench_normalize.py throughput           # MB/s of the speech text stage, by size
    scripts/bench_normalize.py share                # answers whose speech text keeps a digit/symbol
    scripts/bench_normalize.py generate             # re-ask the embedded LLM the number prompts

``generate`` asks the embedded SmolLM2-135M (the library's spoken-assistant defaults, greedy)
every prompt in samples/number_prompts.txt and writes samples/answers_smollm2.jsonl. ``share``
runs that set and the hand-written samples/answers_mixed.txt through the speech text stage,
with the number verbalizer off and on, side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = ROOT / "samples" / "number_prompts.txt"
GENERATED = ROOT / "samples" / "answers_smollm2.jsonl"
MIXED = ROOT / "samples" / "answers_mixed.txt"


async def generate(max_tokens: int) -> None:
    from voicepipe.llm.base import Message
    from voicepipe.llm.local import LocalChat

    prompts = [
        line.strip()
        for line in PROMPTS.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    async with LocalChat(max_tokens=max_tokens, seed=0) as llm:
        with GENERATED.open("w", encoding="utf-8") as out:
            for i, prompt in enumerate(prompts):
                messages: list[Message] = [{"role": "user", "content": prompt}]
                answer = "".join([d async for d in llm.stream(messages)]).strip()
                out.write(json.dumps({"prompt": prompt, "answer": answer}) + "\n")
                out.flush()
                print(f"{i + 1}/{len(prompts)}", file=sys.stderr)


PROSE = frozenset(".,;:!?'\"()-–—…’‘“”")  # punctuation a TTS treats as pauses, not words


def unsaid(text: str) -> str:
    """The digits and symbols in ``text`` (what a TTS would read as written, or skip)."""
    return "".join(c for c in text if c.isdigit() or not (c.isalpha() or c.isspace() or c in PROSE))


def load_sets() -> dict[str, list[str]]:
    generated = [
        json.loads(line)["answer"] for line in GENERATED.read_text(encoding="utf-8").splitlines()
    ]
    mixed = [
        line
        for line in MIXED.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return {f"SmolLM2-135M answers ({len(generated)})": generated, f"mixed ({len(mixed)})": mixed}


def share(verbose: bool) -> None:
    from voicepipe.text.speech import to_speech

    print(f"{'answer set':32} {'with digit/symbol: before':>26} {'after':>10}")
    for name, answers in load_sets().items():
        before = sum(bool(unsaid(to_speech(a, verbalize=False))) for a in answers)
        left = [(a, to_speech(a)) for a in answers]
        after = [(a, s) for a, s in left if unsaid(s)]
        n = len(answers)
        still = f"{len(after):>9}/{n} ({100 * len(after) / n:.1f}%)"
        print(f"{name:32} {before:>5}/{n} ({100 * before / n:4.1f}%) {still}")
        if verbose:
            for answer, said in after:
                print(f"    {unsaid(said)!r:12} {answer[:70]!r} -> {said[:90]!r}")


def throughput(sizes: list[float], delta: int) -> None:
    """MB/s of the speech text stage on LLM-sized deltas, at growing sizes (linear: flat)."""
    from voicepipe.text.normalize import Verbalizer
    from voicepipe.text.speech import SpeechNormalizer

    answers = [a for texts in load_sets().values() for a in texts]
    base = "\n\n".join(answers)
    print(f"deltas of {delta} characters; every stage and size in this one run")
    print(
        f"{'size':>8} {'markdown only':>14} {'+ verbalizer':>13} {'verbalizer alone':>17}  (MB/s)"
    )
    for mb in sizes:
        text = (base * (int(mb * 1e6) // len(base) + 1))[: int(mb * 1e6)]
        pieces = [text[i : i + delta] for i in range(0, len(text), delta)]
        size = len(text.encode()) / 1e6
        rates = []
        for make in (
            lambda: SpeechNormalizer(verbalize=False),
            lambda: SpeechNormalizer(),
            lambda: Verbalizer(),
        ):
            stage = make()
            started = time.perf_counter()
            for piece in pieces:
                stage.feed(piece)
            stage.flush()
            rates.append(size / (time.perf_counter() - started))
        print(f"{mb:>6.1f}MB {rates[0]:>14.2f} {rates[1]:>13.2f} {rates[2]:>17.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="ask the embedded LLM the number prompts")
    g.add_argument("--max-tokens", type=int, default=60)
    sh = sub.add_parser("share", help="answers whose speech text keeps a digit or symbol")
    sh.add_argument("-v", "--verbose", action="store_true", help="list what is left")
    t = sub.add_parser("throughput", help="MB/s of the speech text stage")
    t.add_argument("--sizes", type=float, nargs="+", default=[0.25, 1.0, 4.0], metavar="MB")
    t.add_argument("--delta", type=int, default=4, help="characters per fed delta (default 4)")
    args = parser.parse_args()
    if args.command == "generate":
        anyio.run(generate, args.max_tokens)
    elif args.command == "share":
        share(args.verbose)
    else:
        throughput(args.sizes, args.delta)


if __name__ == "__main__":
    main()
