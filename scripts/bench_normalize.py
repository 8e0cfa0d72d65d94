#!/usr/bin/env python3
"""What the listener hears: the speech text stage's throughput, and how much it leaves unsaid.

    scripts/bench_normalize.py throughput           # MB/s of the speech text stage, by size
    scripts/bench_normalize.py throughput --baseline HEAD   # and of the code at a git revision
    scripts/bench_normalize.py linear               # 1 MB takes ~10x 100 KB, odd inputs too
    scripts/bench_normalize.py share                # answers whose speech text keeps a digit/symbol
    scripts/bench_normalize.py generate             # re-ask the embedded LLM the number prompts

``generate`` asks the embedded SmolLM2-135M (the library's spoken-assistant defaults, greedy)
every prompt in samples/number_prompts.txt and writes samples/answers_smollm2.jsonl. ``share``
runs that set and the hand-written samples/answers_mixed.txt through the speech text stage,
with the number verbalizer off and on, side by side.

Times are CPU time of this process (``time.process_time``), the best of ``--repeat`` runs, so
other work on a shared machine disturbs them less; every figure of a table comes from one run
of the script, stages and revisions alternating. ``--baseline REV`` loads ``voicepipe/text``
as it was at REV (``git show``, into a temporary folder) next to the working tree's.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

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


def _baseline(rev: str, into: Path) -> ModuleType:
    """``voicepipe.text`` as it was at git revision ``rev``, importable as its own package."""
    package = into / "baseline_text"
    package.mkdir()
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", rev, "voicepipe/text/"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in names:
        if not name.endswith(".py"):
            continue
        code = subprocess.run(
            ["git", "show", f"{rev}:{name}"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
        code = code.replace("voicepipe.text.", "baseline_text.").replace(
            "from voicepipe.text import", "from baseline_text import"
        )
        (package / Path(name).name).write_text(code, encoding="utf-8")
    sys.path.insert(0, str(into))
    return importlib.import_module("baseline_text")


Feedable = Any  # SpeechNormalizer, Verbalizer or SentenceBuffer, of either revision


def _stages(text_pkg: ModuleType) -> dict[str, Callable[[], list[Feedable]]]:
    """Each stage as the chain of objects a delta goes through (the pipeline's order)."""
    speech = importlib.import_module(f"{text_pkg.__name__}.speech")
    normalize = importlib.import_module(f"{text_pkg.__name__}.normalize")
    sentences = importlib.import_module(f"{text_pkg.__name__}.sentences")
    return {
        "markdown": lambda: [speech.SpeechNormalizer(verbalize=False)],
        "verbalizer": lambda: [normalize.Verbalizer()],
        "md+verb": lambda: [speech.SpeechNormalizer()],
        "+sentences": lambda: [speech.SpeechNormalizer(), sentences.SentenceBuffer("adaptive")],
    }


def _run_chain(chain: list[Feedable], pieces: list[str]) -> float:
    """CPU seconds to feed ``pieces`` through ``chain`` and flush it."""
    started = time.process_time()
    if len(chain) == 1:
        stage = chain[0]
        for piece in pieces:
            stage.feed(piece)
        stage.flush()
    else:
        normalizer, buffer = chain
        for piece in pieces:
            buffer.feed(normalizer.feed(piece))
        buffer.feed(normalizer.flush())
        buffer.flush()
    return time.process_time() - started


def _corpus(mb: float) -> str:
    base = "\n\n".join(a for texts in load_sets().values() for a in texts)
    return (base * (int(mb * 1e6) // len(base) + 1))[: int(mb * 1e6)]


def throughput(sizes: list[float], delta: int, repeat: int, baseline: str | None) -> None:
    """MB/s of the speech text stage on LLM-sized deltas, at growing sizes (linear: flat)."""
    import voicepipe.text

    with tempfile.TemporaryDirectory() as tmp:
        revisions = {"now": voicepipe.text}
        if baseline:
            revisions = {baseline: _baseline(baseline, Path(tmp)), **revisions}
        stages = {rev: _stages(pkg) for rev, pkg in revisions.items()}
        what = f"deltas of {delta} characters" if delta else "the whole text at once"
        print(f"{what}; MB/s, CPU time, best of {repeat}; every figure from this one run")
        names = list(next(iter(stages.values())))
        print(f"{'size':>7} {'code':>8} " + " ".join(f"{n:>11}" for n in names))
        for mb in sizes:
            text = _corpus(mb)
            step = delta or len(text)
            pieces = [text[i : i + step] for i in range(0, len(text), step)]
            size = len(text.encode()) / 1e6
            best = {(rev, n): float("inf") for rev in stages for n in names}
            for _ in range(repeat):
                for rev, chains in stages.items():  # alternate, so load hits both alike
                    for n, make in chains.items():
                        seconds = _run_chain(make(), pieces)
                        best[rev, n] = min(best[rev, n], seconds)
            for rev in stages:
                rates = " ".join(f"{size / best[rev, n]:>11.2f}" for n in names)
                print(f"{mb:>5.2f}MB {rev[:8]:>8} {rates}")
            if baseline:
                ratios = " ".join(f"{best[baseline, n] / best['now', n]:>10.2f}x" for n in names)
                print(f"{'':>7} {'speedup':>8} {ratios}")


def linear(repeat: int) -> None:
    """Time for 1 MB against 100 KB (about 10 when linear), fed in 4-character deltas."""
    from voicepipe.text.speech import SpeechNormalizer

    words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
    inputs: dict[str, Callable[[int], str]] = {
        "LLM answers": lambda n: _corpus(n / 1e6),
        "plain words": lambda n: (words * (n // len(words) + 1))[:n],
        "no space at all": lambda n: "x" * n,
        "400-digit numbers": lambda n: (("7" * 400 + " ") * (n // 401 + 1))[:n],
        '"$$$$..."': lambda n: "$" * n,
        "1,1,1,...": lambda n: ("1," * n)[:n],
    }
    print(f"speech text stage (markdown + verbalizer), 4-character deltas, best of {repeat}")
    print(f"{'input':>20} {'100 KB':>9} {'1 MB':>9} {'ratio':>6}")
    for name, make in inputs.items():
        times = []
        for n in (100_000, 1_000_000):
            text = make(n)
            pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
            times.append(min(_run_chain([SpeechNormalizer()], pieces) for _ in range(repeat)))
        small, large = times
        print(f"{name:>20} {small * 1e3:>7.0f}ms {large * 1e3:>7.0f}ms {large / small:>6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="ask the embedded LLM the number prompts")
    g.add_argument("--max-tokens", type=int, default=60)
    sh = sub.add_parser("share", help="answers whose speech text keeps a digit or symbol")
    sh.add_argument("-v", "--verbose", action="store_true", help="list what is left")
    t = sub.add_parser("throughput", help="MB/s of the speech text stage")
    t.add_argument("--sizes", type=float, nargs="+", default=[0.25, 1.0], metavar="MB")
    t.add_argument(
        "--delta", type=int, default=4, help="characters per fed delta (default 4; 0: all)"
    )
    t.add_argument("--repeat", type=int, default=3, help="runs per figure, the best kept")
    t.add_argument("--baseline", metavar="REV", help="also measure voicepipe/text at git REV")
    lin = sub.add_parser("linear", help="1 MB against 100 KB, odd inputs too")
    lin.add_argument("--repeat", type=int, default=2, help="runs per figure, the best kept")
    args = parser.parse_args()
    if args.command == "generate":
        anyio.run(generate, args.max_tokens)
    elif args.command == "share":
        share(args.verbose)
    elif args.command == "linear":
        linear(args.repeat)
    else:
        throughput(args.sizes, args.delta, args.repeat, args.baseline)


if __name__ == "__main__":
    main()
