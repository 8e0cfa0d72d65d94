"""Encoded files (MP3/OGG/M4A): peak memory and time for a long answer, two sinks side by side.

    .venv/bin/python scripts/bench_encode.py                       # 30 minutes, mp3, vs HEAD
    .venv/bin/python scripts/bench_encode.py --minutes 30 --format m4a --rounds 2
    .venv/bin/python scripts/bench_encode.py --old a8be609         # the sink at that commit

Each measurement is a fresh process that writes ``--minutes`` of speech-like audio (22.05 kHz
tones, 0.5 s chunks, as a TTS engine hands them over) through ``EncodedFileSink`` as fast as
the sink takes it, then reports its own peak RSS and its largest child's (ffmpeg; Linux counts
a child's pages from before it exec'd, so a child forked from a big process reads as big).
"old" is ``voicepipe/audio/sinks/files.py`` at
``--old`` (git), loaded beside today's package; "new" is the working tree's. The two run
alternately, ``--rounds`` times each, so machine noise falls on both.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RATE = 22050
CHUNK_S = 0.5


def child(module_path: str, out: str, minutes: float, bitrate: str | None) -> None:
    """Write the audio through the sink in ``module_path``; print the figures as JSON."""
    import anyio
    import numpy as np

    from voicepipe.audio.chunk import AudioChunk

    spec = importlib.util.spec_from_file_location("bench_files", module_path)
    assert spec is not None and spec.loader is not None
    files = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(files)
    n = int(minutes * 60 / CHUNK_S)
    t = np.arange(int(RATE * CHUNK_S)) / RATE

    async def main() -> float:
        sink = files.EncodedFileSink(out, bitrate=bitrate)
        start = time.perf_counter()
        await sink.start()
        for i in range(n):
            pitch = 180 + (i * 37) % 400  # a new pitch per chunk, as speech varies
            samples = (np.sin(2 * np.pi * pitch * t) * 6000).astype(np.int16)
            await sink.write(AudioChunk(samples, RATE, i // 8))
        await sink.finish()
        return time.perf_counter() - start

    seconds = anyio.run(main)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mb": own, "children_rss_mb": children}))


def duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip())


def measure(module: Path, out: Path, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", str(module), "--out", str(out)]
    command += ["--minutes", str(args.minutes)]
    if args.bitrate:
        command += ["--bitrate", args.bitrate]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["file_s"] = duration(out)
    figures["file_mb"] = out.stat().st_size / 1e6
    out.unlink()
    return figures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--format", default="mp3", choices=["mp3", "ogg", "m4a", "flac"])
    p.add_argument("--bitrate", help="e.g. 64k")
    p.add_argument("--old", default="HEAD", help="git revision of the old sink (default HEAD)")
    p.add_argument("--new", default=str(ROOT / "voicepipe/audio/sinks/files.py"), help="a files.py")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.out, args.minutes, args.bitrate)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        old = folder / "files_old.py"
        old.write_bytes(
            subprocess.run(
                ["git", "show", f"{args.old}:voicepipe/audio/sinks/files.py"],
                cwd=ROOT,
                capture_output=True,
                check=True,
            ).stdout
        )
        variants = {f"old ({args.old})": old, "new": Path(args.new)}
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, module in variants.items():
                figures = measure(module, folder / f"out.{args.format}", args)
                rows[name].append(figures)
                print(f"{name}: {figures}", file=sys.stderr)
    print(f"{args.minutes:g} minutes of audio to .{args.format}, {args.rounds} round(s) each")
    print("sink            peak RSS MB  largest child MB  time s   file s")
    for name, runs in rows.items():
        for r in runs:
            print(
                f"{name:15} {r['rss_mb']:11.0f} {r['children_rss_mb']:17.0f} "
                f"{r['seconds']:7.1f} {r['file_s']:8.1f}"
            )


if __name__ == "__main__":
    main()
