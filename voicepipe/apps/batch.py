"""Batch synthesis: one audio file per prompt, a few at a time, with a manifest of what came out.

One loaded pipeline serves every prompt. ``concurrency`` runs overlap one prompt's TTS with
another's LLM (the embedded llama.cpp server answers one request at a time, so more than
two rarely helps there). A failing prompt is recorded and does not stop the others.
"""

from __future__ import annotations

import csv
import json
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio

from voicepipe.audio.sinks.files import ENCODED_FORMATS, check_encoder, file_sink
from voicepipe.errors import ConfigError, VoicepipeError
from voicepipe.pipeline import Pipeline, Run

__all__ = [
    "BatchItem",
    "BatchResult",
    "plan_batch",
    "synthesize_batch",
    "write_manifest",
]

Naming = Literal["number", "slug"]
FORMATS = ("wav", *sorted({s.lstrip(".") for s in ENCODED_FORMATS}))
METRIC_FIELDS = ("ttft_ms", "first_chunk_ms", "tts_first_audio_ms", "ttfa_ms", "total_ms")


@dataclass(frozen=True)
class BatchItem:
    """One prompt and the file its answer goes to (``number`` counts from 1)."""

    number: int
    prompt: str
    path: Path


@dataclass
class BatchResult:
    """What became of one prompt: the file, the speech text, its length and timings."""

    number: int
    prompt: str
    file: str  # the file's name inside the output folder
    ok: bool = False
    error: str | None = None
    text: str = ""  # the text spoken (after speech normalization)
    answer: str = ""  # the LLM's answer as written
    duration_s: float = 0.0  # audio written
    underrun_ms: float = 0.0
    chunks: int = 0
    timings_ms: dict[str, float | None] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """A flat record for CSV (timings as columns)."""
        out = asdict(self)
        out.update(out.pop("timings_ms"))
        return out


def slug(text: str, max_chars: int = 40) -> str:
    """A file-name-safe ASCII slug: ``"Why is the sky blue?"`` -> ``why-is-the-sky-blue``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return words[:max_chars].rstrip("-") or "prompt"


def plan_batch(
    prompts: Sequence[str], out_dir: str | Path, fmt: str = "wav", naming: Naming = "number"
) -> list[BatchItem]:
    """Name one file per prompt in ``out_dir``: ``001.wav`` or ``001-why-is-the-sky-blue.wav``."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if naming not in ("number", "slug"):
        raise ConfigError(f"unknown naming {naming!r}: use number or slug")
    width = max(3, len(str(len(prompts))))
    out = Path(out_dir)
    items = []
    for number, prompt in enumerate(prompts, 1):
        stem = f"{number:0{width}d}"
        if naming == "slug":
            stem += f"-{slug(prompt)}"
        items.append(BatchItem(number, prompt, out / f"{stem}.{fmt}"))
    return items


async def synthesize_batch(
    pipe: Pipeline,
    items: Sequence[BatchItem],
    *,
    concurrency: int = 2,
    bitrate: str | None = None,
    smooth_joins: bool = True,
    pause_ms: float = 0.0,
    on_done: Callable[[BatchResult], None] | None = None,
) -> list[BatchResult]:
    """Write every item's answer to its file, ``concurrency`` at a time; results in item order.

    ``on_done`` is called as each item ends (for progress). Errors other than a
    ``VoicepipeError`` (bugs, cancellation) stop the batch.
    """
    if concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    for item in items:  # a bad format or bitrate, or no ffmpeg, fails before any work
        file_sink(item.path, bitrate=bitrate)
        check_encoder(item.path)
    limiter = anyio.CapacityLimiter(concurrency)
    results: list[BatchResult | None] = [None] * len(items)

    async def one(position: int, item: BatchItem) -> None:
        async with limiter:
            result = await _synthesize_one(pipe, item, bitrate, smooth_joins, pause_ms)
        results[position] = result
        if on_done is not None:
            on_done(result)

    async with anyio.create_task_group() as tg:
        for position, item in enumerate(items):
            tg.start_soon(one, position, item)
    return [r for r in results if r is not None]


async def _synthesize_one(
    pipe: Pipeline, item: BatchItem, bitrate: str | None, smooth_joins: bool, pause_ms: float
) -> BatchResult:
    result = BatchResult(item.number, item.prompt, item.path.name)
    sink = file_sink(item.path, bitrate=bitrate, smooth_joins=smooth_joins, pause_ms=pause_ms)
    run: Run | None = None
    try:
        async with pipe.run(item.prompt, sink) as run:
            pass
        result.ok = True
    except VoicepipeError as exc:
        result.error = str(exc) or type(exc).__name__
    if run is not None:
        result.text = " ".join(run.chunks)
        result.answer = run.answer
        result.duration_s = round(sink.seconds, 3)
        if run.timeline.first("llm.request") is not None:
            m = run.metrics
            result.underrun_ms = m.underrun_ms
            result.chunks = m.chunks
            result.timings_ms = {
                k: None if (v := getattr(m, k)) is None else round(v, 1) for k in METRIC_FIELDS
            }
    if not result.timings_ms:
        result.timings_ms = dict.fromkeys(METRIC_FIELDS)
    return result


def write_manifest(
    results: Sequence[BatchResult], out_dir: str | Path, *, extra: dict[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write ``manifest.json`` (items and a summary) and ``manifest.csv`` (one row per item)."""
    out = Path(out_dir)
    ok = [r for r in results if r.ok]
    summary = {
        "items": len(results),
        "ok": len(ok),
        "failed": len(results) - len(ok),
        "audio_s": round(sum(r.duration_s for r in results), 3),
        **(extra or {}),
    }
    json_path, csv_path = out / "manifest.json", out / "manifest.csv"
    document = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "summary": summary,
        "items": [asdict(r) for r in results],
    }
    json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    rows = [r.row() for r in results]
    columns = list(rows[0]) if rows else ["number", "prompt", "file", "ok", "error"]
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return json_path, csv_path
