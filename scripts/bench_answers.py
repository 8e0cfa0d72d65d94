#!/usr/bin/env python3
"""Score the LLM's answers to simple factual questions, as a voice assistant would get them.

Each question in samples/factual_questions.tsv lists the words a right answer contains. An
answer scores when it contains one of them and is in English; the report also gives the
median length in words (spoken answers should be short). Settings are compared side by side
in one run: `--compare` takes system-prompt presets, temperatures or few-shot on/off.

    scripts/bench_answers.py                       # the library's defaults for the spoken assistant
    scripts/bench_answers.py --variants all        # every variant below, side by side
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voicepipe.llm.base import Message
from voicepipe.llm.local import ASSISTANT_SYSTEM, LocalChat

QUESTIONS = Path(__file__).resolve().parents[1] / "samples" / "factual_questions.tsv"
OLD_PERSONA = (
    "You are a friendly voice assistant. Answer in English, briefly, in plain spoken "
    "sentences: no lists, no markdown."
)
LLAMA_CPP_TEMPERATURE = 0.8  # llama.cpp's server default, what the embedded model had before
# name -> (system prompt, temperature, worked examples before the question)
VARIANTS: dict[str, tuple[str, float, bool]] = {
    "before (persona, llama.cpp sampling)": (OLD_PERSONA, LLAMA_CPP_TEMPERATURE, False),
    "persona, greedy": (OLD_PERSONA, 0.0, False),
    "assistant prompt, greedy": (ASSISTANT_SYSTEM, 0.0, False),
    "assistant prompt + examples, greedy (default)": (ASSISTANT_SYSTEM, 0.0, True),
}


def load_questions(path: Path) -> list[tuple[str, list[str]]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            question, answers = line.split("\t")
            rows.append((question, [a.strip().lower() for a in answers.split("|")]))
    return rows


def is_right(answer: str, accepted: list[str]) -> bool:
    text = answer.lower()
    english = sum(c.isascii() for c in answer) >= 0.97 * max(1, len(answer))
    return english and any(re.search(rf"\b{re.escape(a)}\b", text) for a in accepted)


async def score(
    llm: LocalChat, questions: list[tuple[str, list[str]]]
) -> tuple[int, float, list[str]]:
    right, lengths, wrong = 0, [], []
    for question, accepted in questions:
        messages: list[Message] = [{"role": "user", "content": question}]
        answer = "".join([d async for d in llm.stream(messages)]).strip()
        lengths.append(len(answer.split()))
        if is_right(answer, accepted):
            right += 1
        else:
            wrong.append(f"{question} -> {answer!r}")
    return right, statistics.median(lengths), wrong


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", choices=["default", "all"], default="default")
    parser.add_argument("--max-tokens", type=int, default=60)
    parser.add_argument("-v", "--verbose", action="store_true", help="list the wrong answers")
    args = parser.parse_args()
    questions = load_questions(QUESTIONS)
    names = list(VARIANTS) if args.variants == "all" else [list(VARIANTS)[-1]]
    print(f"{len(questions)} questions, SmolLM2-135M (embedded), max {args.max_tokens} tokens")
    print(f"{'variant':48} {'right':>9} {'median words':>13}")
    for name in names:
        system, temperature, examples = VARIANTS[name]
        llm = LocalChat(
            max_tokens=args.max_tokens,
            temperature=temperature,
            seed=0,
            system=system,
            examples=examples,
        )
        async with llm:
            right, words, wrong = await score(llm, questions)
        print(f"{name:48} {right:>3}/{len(questions):<5} {words:>13.0f}")
        if args.verbose:
            for line in wrong:
                print("   ", line)


if __name__ == "__main__":
    anyio.run(main)
