#!/usr/bin/env python
"""Time to first audio on the embedded default, every arm interleaved in one session.

Three measurements, each printing medians side by side and their ratios:

    # chunkings (and the first-phrase rule before this change, from git HEAD) against the floor
    .venv/bin/python scripts/bench_ttfa.py chunking -n 5 [--json out.json]
    # llama.cpp threads / spin-wait / priority and Piper's onnxruntime threads (adaptive),
    # idle and with one busy process beside it (--load 1)
    .venv/bin/python scripts/bench_ttfa.py threads -n 4 --splits 2/0/1/0,1/0/1/0 [--load 1]
    # a fresh process's first answer, with and without the warm-up, against a warm answer
    .venv/bin/python scripts/bench_ttfa.py cold -n 4

The floor of a run (``voicepipe.apps.bench.Floor``) is its first three words plus Piper on
those words alone, measured right after the run. Runs go into a null sink on a real-time
virtual clock, so underruns count. The order is A B C A B C ... so drift on a shared machine
falls on every arm alike.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = {
    "early comma": "Why is the sky blue? Answer in three sentences.",
    "plain clause": "Tell me about the history of tea in three sentences.",
    "multi-sentence": "How do bees make honey? Explain in a few sentences.",
    "short": "What is the capital of France?",
    "list": "Give me five tips for staying focused while studying, as a numbered list.",
    "story": "Tell me a story about a lighthouse keeper who finds a message in a bottle.",
}


def p50(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None, decimals: int = 0) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}"


@contextmanager
def head_sentence_buffer() -> Iterator[Callable[..., Any]]:
    """The SentenceBuffer of git HEAD (the rule before this change), to run side by side."""
    source = subprocess.run(
        ["git", "show", "HEAD:voicepipe/text/sentences.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sentences_head.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("sentences_head", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)

        def make(chunking: str, **kw: Any) -> Any:
            kw.pop("chars_per_second", None)  # HEAD's rate was fixed
            return module.SentenceBuffer(chunking, **kw)

        yield make


async def speak(pipe: Any, prompt: str, buffer: Callable[..., Any] | None = None) -> Any:
    """One run into a real-time null sink; ``buffer`` replaces the pipeline's SentenceBuffer.

    Every run starts as a new question does: llama.cpp's prompt cache holds the system prompt
    and examples, not this prompt (which the arm before may just have asked).
    """
    import voicepipe.pipeline as pipeline_module
    from voicepipe.audio.sinks.null import NullSink

    await pipe.llm.warm_up()
    own = pipeline_module.SentenceBuffer
    if buffer is not None:
        pipeline_module.SentenceBuffer = buffer
    try:
        return await pipe.speak(prompt, NullSink(realtime=True))
    finally:
        pipeline_module.SentenceBuffer = own


# ---------------------------------------------------------------------- chunking


async def chunking(args: argparse.Namespace) -> dict[str, Any]:
    from voicepipe.apps.bench import measure_floor
    from voicepipe.llm.local import LocalChat
    from voicepipe.pipeline import Pipeline
    from voicepipe.tts.piper import PiperTTS

    llm, tts = LocalChat(max_tokens=args.max_tokens, seed=0), PiperTTS()
    arms = ["naive", "sentence", "adaptive (HEAD)", "adaptive"]
    pipes = {arm: Pipeline(llm, tts, chunking=arm.split()[0]) for arm in arms}
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {
        label: {arm: [] for arm in arms} for label in PROMPTS
    }
    with head_sentence_buffer() as head:
        async with Pipeline(llm, tts):  # loads (and warms) both once
            for round_ in range(args.warmup + args.n):
                for label, prompt in PROMPTS.items():
                    for arm, pipe in pipes.items():
                        run = await speak(pipe, prompt, head if "HEAD" in arm else None)
                        if round_ < args.warmup:
                            continue
                        floor = await measure_floor(run, tts)
                        m = run.metrics
                        rows[label][arm].append(
                            {
                                "ttfa_ms": m.ttfa_ms,
                                "ttft_ms": m.ttft_ms,
                                "first_chunk_ms": m.first_chunk_ms,
                                "breakdown": m.breakdown(),
                                "underrun_ms": m.underrun_ms,
                                "first_chunk": m.first_chunk_text,
                                "floor": None if floor is None else floor.as_dict(),
                                "chunks": m.chunks,
                                "audio_ms": m.audio_ms,
                            }
                        )
                print(f"round {round_ + 1}/{args.warmup + args.n} done", file=sys.stderr)
    print(f"voice speaking rate: {tts.chars_per_second:.1f} characters/s (measured at load)")
    header = ["prompt", *arms, "floor", "adaptive/floor", "adaptive/sentence", "HEAD/sentence"]
    print(" | ".join(header) + " | underrun (adaptive) | audio s | first chunk (adaptive)")
    for label, by_arm in rows.items():
        ttfa = {
            arm: p50([r["ttfa_ms"] for r in runs if r["ttfa_ms"]]) for arm, runs in by_arm.items()
        }
        floors = [r["floor"]["floor_ms"] for r in by_arm["adaptive"] if r["floor"]]
        floor = p50(floors)
        underrun = sum(r["underrun_ms"] for r in by_arm["adaptive"])
        audio = p50([r["audio_ms"] for r in by_arm["adaptive"]]) or 0.0
        first = by_arm["adaptive"][0]["first_chunk"] if by_arm["adaptive"] else ""
        cells = [label, *(fmt(ttfa[a]) for a in arms), fmt(floor)]
        cells += [ratio(ttfa["adaptive"], floor), ratio(ttfa["adaptive"], ttfa["sentence"])]
        cells += [ratio(ttfa["adaptive (HEAD)"], ttfa["sentence"])]
        print(" | ".join(cells) + f" | {underrun:.0f} ms | {audio / 1000:.1f} | {first!r}")
    print("where adaptive TTFA went against its floor (p50 ms): first token, words, TTS")
    for label, by_arm in rows.items():
        runs = by_arm["adaptive"]
        parts = [r["breakdown"] for r in runs if r["breakdown"]]
        floors = [r["floor"] for r in runs if r["floor"]]
        ttft = p50([b["llm_first_token_ms"] for b in parts])
        chunk = p50([r["first_chunk_ms"] for r in runs if r["first_chunk_ms"] is not None])
        tts_part = p50([b["tts_first_audio_ms"] for b in parts])
        print(
            f"{label}: adaptive {fmt(ttft)} / chunk at {fmt(chunk)} / TTS {fmt(tts_part)}"
            f" + overhead {fmt(p50([b['pipeline_overhead_ms'] for b in parts]), 1)}"
            f"; floor {fmt(p50([f['first_token_ms'] for f in floors]))}"
            f" / three words at {fmt(p50([f['three_words_ms'] for f in floors]))}"
            f" / TTS alone {fmt(p50([f['tts_three_words_ms'] for f in floors]))}"
        )
    return {"rows": rows, "chars_per_second": tts.chars_per_second}


# ---------------------------------------------------------------------- threads


async def threads(args: argparse.Namespace) -> dict[str, Any]:
    from voicepipe.apps.bench import measure_floor
    from voicepipe.lifecycle import aclose_all
    from voicepipe.llm.local import ASSISTANT_SYSTEM, EmbeddedLlamaServer, LocalChat
    from voicepipe.pipeline import Pipeline
    from voicepipe.tts.piper import PiperTTS

    splits = [tuple(int(x) for x in s.split("/")) for s in args.splits.split(",")]
    servers: dict[tuple[int, ...], EmbeddedLlamaServer] = {}
    voices: dict[int, PiperTTS] = {}
    pipes = {}
    for llm_threads, poll, piper_threads, priority in splits:
        # A server per arm: arms sharing one would share its prompt cache.
        server = EmbeddedLlamaServer(threads=llm_threads, poll=poll, priority=priority, seed=0)
        servers[llm_threads, poll, priority, piper_threads] = server
        # The bundled model's defaults, on a server of this split's threads.
        llm = LocalChat(
            server=server,
            max_tokens=args.max_tokens,
            seed=0,
            temperature=0.0,
            system=ASSISTANT_SYSTEM,
            examples=True,
        )
        tts = voices.setdefault(piper_threads, PiperTTS(threads=piper_threads))
        arm = f"llama {llm_threads} poll {poll} prio {priority} / piper {piper_threads}"
        pipes[arm] = Pipeline(llm, tts)
    results: dict[str, dict[str, list[dict[str, float | None]]]] = {
        arm: {label: [] for label in PROMPTS} for arm in pipes
    }
    try:
        for pipe in pipes.values():
            await pipe.prepare()
        for round_ in range(args.warmup + args.n):
            for label, prompt in PROMPTS.items():
                for arm, pipe in pipes.items():
                    run = await speak(pipe, prompt)
                    if round_ < args.warmup:
                        continue
                    floor = await measure_floor(run, pipe.tts)
                    m = run.metrics
                    results[arm][label].append(
                        {
                            "ttfa_ms": m.ttfa_ms,
                            "tts_ms": None
                            if (b := m.breakdown()) is None
                            else b["tts_first_audio_ms"],
                            "ttft_ms": m.ttft_ms,
                            "underrun_ms": m.underrun_ms,
                            "floor_ms": None if floor is None else floor.floor_ms,
                        }
                    )
            print(f"round {round_ + 1}/{args.warmup + args.n} done", file=sys.stderr)
    finally:
        await aclose_all([*(p.llm for p in pipes.values()), *voices.values()])
    base = next(iter(pipes))
    print("TTFA p50 per prompt (ms), first chunk's TTS p50, underrun total; ratio to " + base)
    for arm, by_prompt in results.items():
        cells = []
        ratios = []
        for label, runs in by_prompt.items():
            ttfa = p50([r["ttfa_ms"] for r in runs if r["ttfa_ms"] is not None])
            ref = p50([r["ttfa_ms"] for r in results[base][label] if r["ttfa_ms"] is not None])
            cells.append(f"{label} {fmt(ttfa)}")
            if ttfa and ref:
                ratios.append(ttfa / ref)
        every = [r for runs in by_prompt.values() for r in runs]
        tts = p50([r["tts_ms"] for r in every if r["tts_ms"] is not None])
        under = sum(r["underrun_ms"] or 0.0 for r in every)
        ttft = p50([r["ttft_ms"] for r in every if r["ttft_ms"] is not None])
        over = [r["ttfa_ms"] / r["floor_ms"] for r in every if r["ttfa_ms"] and r["floor_ms"]]
        print(
            f"{arm}: {'; '.join(cells)} | TTS first audio {fmt(tts)} | TTFT {fmt(ttft)}"
            f" | TTFA/floor p50 {fmt(p50(over), 2)} max {fmt(max(over, default=None), 2)}"
            f" | underrun {under:.0f} ms | geometric mean ratio"
            f" {statistics.geometric_mean(ratios):.2f}"
        )
    return {"results": results}


# ---------------------------------------------------------------------- cold start


CHILD = """
import json, sys, time, anyio
from voicepipe.audio.sinks.null import NullSink
from voicepipe.llm.local import LocalChat
from voicepipe.pipeline import Pipeline
from voicepipe.tts.piper import PiperTTS

async def main():
    warm = sys.argv[1] == "warm"
    async with Pipeline(LocalChat(warm=warm, max_tokens=int(sys.argv[3])), PiperTTS()) as pipe:
        loaded = time.time()
        run = await pipe.speak(sys.argv[2], NullSink(realtime=True))
    print(json.dumps({"ttfa_ms": run.metrics.ttfa_ms, "loaded_unix": loaded}))

anyio.run(main)
"""


async def cold(args: argparse.Namespace) -> dict[str, Any]:
    from voicepipe.llm.local import LocalChat
    from voicepipe.pipeline import Pipeline
    from voicepipe.tts.piper import PiperTTS

    prompt = args.prompt
    arms = {"fresh, warmed in prepare()": "warm", "fresh, no warm-up": "cold"}
    out: dict[str, list[float]] = {arm: [] for arm in (*arms, "warm (same process)")}
    loads: dict[str, list[float]] = {arm: [] for arm in arms}
    async with Pipeline(LocalChat(max_tokens=args.max_tokens), PiperTTS()) as pipe:
        await speak(pipe, prompt)  # the process is warm from here on
        for round_ in range(args.n):
            for arm, mode in arms.items():
                spawned = time.time()
                result = await anyio.run_process(
                    [sys.executable, "-c", CHILD, mode, prompt, str(args.max_tokens)],
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                )
                report = json.loads(result.stdout.decode().strip().splitlines()[-1])
                out[arm].append(report["ttfa_ms"])
                loads[arm].append((report["loaded_unix"] - spawned) * 1000.0)
                run = await speak(pipe, prompt)
                out["warm (same process)"].append(run.metrics.ttfa_ms or 0.0)
            print(f"round {round_ + 1}/{args.n} done", file=sys.stderr)
    warm = p50(out["warm (same process)"])
    print(f"prompt {prompt!r}: TTFA of the first answer, p50 (min-max) over {args.n} processes")
    for arm, values in out.items():
        load = f", loading p50 {fmt(p50(loads[arm]))} ms" if arm in loads else ""
        print(
            f"  {arm}: {fmt(p50(values))} ms ({fmt(min(values))}-{fmt(max(values))})"
            f", {ratio(p50(values), warm)}x warm{load}"
        )
    return {"ttfa_ms": out, "load_ms": loads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("chunking", "threads", "cold"))
    parser.add_argument("-n", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument(
        "--splits",
        default="2/50/1/0,1/0/1/-1,2/0/1/-1,1/0/2/-1,2/0/2/-1",
        help="llama threads/poll/piper threads/llama priority, comma separated",
    )
    parser.add_argument("--prompt", default=PROMPTS["plain clause"])
    parser.add_argument("--only", help="comma-separated prompt labels to run (default: all)")
    parser.add_argument(
        "--load",
        type=int,
        default=0,
        metavar="N",
        help="keep N busy processes running beside the measurement (outside load, as a browser "
        "or a build would be)",
    )
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.only:
        keep = {label.strip() for label in args.only.split(",")}
        for label in [label for label in PROMPTS if label not in keep]:
            del PROMPTS[label]
    print(f"{os.cpu_count()} cores (shared with other work: figures drift, ratios hold)")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        report = anyio.run(
            {"chunking": chunking, "threads": threads, "cold": cold}[args.what], args
        )
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
