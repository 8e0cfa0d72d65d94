"""Batch throughput: one process against local Ray workers, side by side in one run.

Runs ``voicepipe synth --prompts FILE --out-dir DIR`` as a user would, each mode in a fresh
out dir and a process of its own, rounds alternating the order of the modes:

- ``local c1``, ``local c2``: one process, one loaded pipeline, ``--concurrency`` 1 and 2;
- ``ray w1``, ``ray w2``: a local Ray cluster with 1 and 2 workers (each its own pipeline).

Reported per mode (medians over the rounds): prompts per minute and audio seconds per wall
second over the batch (``wall_s`` in the manifest: from before the models load to the last
file; for Ray after the cluster is up, whose start is shown apart), and the process's whole
wall time. Ratios are against ``local c1`` in the same run.

Usage: .venv/bin/python scripts/bench_batch.py [-n 16] [--rounds 2] [--max-tokens 60]
       [--llm local --tts piper] [--modes local1,local2,ray1,ray2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = {
    "local1": ("local c1", ["--concurrency", "1"]),
    "local2": ("local c2", ["--concurrency", "2"]),
    "ray1": ("ray w1", ["--ray", "--workers", "1"]),
    "ray2": ("ray w2", ["--ray", "--workers", "2"]),
}


def prompts(n: int) -> list[str]:
    lines = (ROOT / "samples" / "prompts.txt").read_text().splitlines()
    pool = [p.strip() for p in lines if p.strip() and not p.startswith("#")]
    return [pool[i % len(pool)] + ("" if i < len(pool) else f" (take {i // len(pool) + 1})")
            for i in range(n)]  # fmt: skip


def run_mode(mode: str, prompt_file: Path, work: Path, extra: list[str]) -> dict[str, float]:
    out = Path(tempfile.mkdtemp(prefix=f"{mode}-", dir=work))
    cmd = [sys.executable, "-m", "voicepipe", "synth", "--prompts", str(prompt_file)]
    cmd += ["--out-dir", str(out), *MODES[mode][1], *extra]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    process_s = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    summary = json.loads((out / "manifest.json").read_text())["summary"]
    wall = summary["wall_s"]
    return {
        "prompts_per_min": summary["ok"] / wall * 60,
        "audio_per_wall_s": summary["audio_s"] / wall,
        "wall_s": wall,
        "process_s": process_s,
        "startup_s": process_s - wall,  # imports, and for Ray the cluster's start
        "audio_s": summary["audio_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=16, help="prompts per batch (default 16)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of all modes (default 2)")
    parser.add_argument("--max-tokens", type=int, default=60, help="answer cap (default 60)")
    parser.add_argument("--llm", default="local")
    parser.add_argument("--tts", default="piper")
    parser.add_argument("--modes", default="local1,local2,ray1,ray2")
    args = parser.parse_args()
    modes = args.modes.split(",")
    if unknown := [m for m in modes if m not in MODES]:
        raise SystemExit(f"unknown modes {unknown}: use {', '.join(MODES)}")
    extra = ["--llm", args.llm, "--tts", args.tts, "--max-tokens", str(args.max_tokens)]
    extra += ["--seed", "1"]
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        prompt_file = work / "prompts.txt"
        prompt_file.write_text("\n".join(prompts(args.n)) + "\n")
        for r in range(args.rounds):
            order = modes if r % 2 == 0 else modes[::-1]
            for mode in order:
                res = run_mode(mode, prompt_file, work, extra)
                results[mode].append(res)
                print(
                    f"round {r + 1} {MODES[mode][0]:9} {res['prompts_per_min']:6.1f} prompts/min"
                    f"  {res['audio_per_wall_s']:5.2f} audio s/s  batch {res['wall_s']:.1f} s",
                    file=sys.stderr,
                )
    cpus = os.cpu_count()
    print(
        f"\n{args.n} prompts, llm={args.llm} tts={args.tts} max_tokens={args.max_tokens}, "
        f"{args.rounds} round(s), {cpus} CPUs; medians\n"
    )
    base = statistics.median(r["prompts_per_min"] for r in results[modes[0]])
    print(
        f"{'mode':10} {'prompts/min':>11} {'audio s/s':>9} {'vs ' + MODES[modes[0]][0]:>12} "
        f"{'batch s':>8} {'startup s':>9}"
    )
    for mode in modes:
        rs = results[mode]

        def med(key: str, rs: list[dict[str, float]] = rs) -> float:
            return statistics.median(r[key] for r in rs)

        print(
            f"{MODES[mode][0]:10} {med('prompts_per_min'):11.1f} {med('audio_per_wall_s'):9.2f} "
            f"{med('prompts_per_min') / base:11.2f}x {med('wall_s'):8.1f} {med('startup_s'):9.1f}"
        )


if __name__ == "__main__":
    main()
