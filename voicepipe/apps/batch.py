"""Batch synthesis: one audio file per prompt, a few at a time, with a manifest of what came out.

One loaded pipeline serves every prompt. ``concurrency`` runs overlap one prompt's TTS with
another's LLM (the embedded llama.cpp server answers one request at a time, so more than
two rarely helps there). A failing prompt is recorded and does not stop the others.

Every item has an ``id``: a hash of its prompt and the settings that shape its audio, so a
rerun (:mod:`voicepipe.apps.resume`) knows which files are still what was asked for. A file
appears under its final name only once it is complete, so a name on disk is never half a file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio

from voicepipe.audio.sinks.files import ENCODED_FORMATS, file_sink
from voicepipe.audio.sinks.paths import check_encoder, new_file_mode, private_temp
from voicepipe.errors import AudioError, ConfigError, VoicepipeError
from voicepipe.pipeline import Pipeline, Run

if TYPE_CHECKING:
    from voicepipe.apps.resume import Journal

__all__ = [
    "BatchItem",
    "BatchResult",
    "item_id",
    "plan_batch",
    "remove_partials",
    "synthesize_batch",
    "synthesize_one",
    "write_manifest",
]

Naming = Literal["number", "slug", "id"]
FORMATS = ("wav", *sorted({s.lstrip(".") for s in ENCODED_FORMATS}))
METRIC_FIELDS = ("ttft_ms", "first_chunk_ms", "tts_first_audio_ms", "ttfa_ms", "total_ms")


@dataclass(frozen=True)
class BatchItem:
    """One prompt and the file its answer goes to (``number`` counts from 1).

    ``id`` names the work, not the place: the same prompt with the same settings keeps its id
    when lines are added to or removed from the prompts file.
    """

    number: int
    prompt: str
    path: Path
    id: str = ""


@dataclass
class BatchResult:
    """What became of one prompt: the file, the speech text, its length and timings."""

    number: int
    prompt: str
    file: str  # the file's name inside the output folder
    id: str = ""  # the item's id (prompt and settings): what a rerun matches on
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


def item_id(prompt: str, settings: Mapping[str, Any] | None = None, copy: int = 0) -> str:
    """12 hex digits naming ``prompt`` spoken with ``settings``; ``copy`` tells repeats apart.

    Settings are whatever changes the audio (models, voice, speed, format...), never a key.
    """
    key = json.dumps(
        {"prompt": prompt, "settings": dict(settings or {}), "copy": copy},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def plan_batch(
    prompts: Sequence[str],
    out_dir: str | Path,
    fmt: str = "wav",
    naming: Naming = "number",
    settings: Mapping[str, Any] | None = None,
) -> list[BatchItem]:
    """Name one file per prompt in ``out_dir``: ``001.wav``, ``001-why-is-the-sky-blue.wav``,
    or ``<id>.wav`` (``naming="id"``: names that survive edits to the prompts file).

    ``settings`` go into each item's id (with the format), so changing a voice or a model
    makes a rerun redo the files instead of keeping audio made with the old ones.
    """
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if naming not in ("number", "slug", "id"):
        raise ConfigError(f"unknown naming {naming!r}: use number, slug or id")
    width = max(3, len(str(len(prompts))))
    out = Path(out_dir)
    seen: dict[str, int] = {}
    items = []
    for number, prompt in enumerate(prompts, 1):
        copy = seen[prompt] = seen.get(prompt, -1) + 1
        ident = item_id(prompt, {**(settings or {}), "format": fmt}, copy)
        stem = ident if naming == "id" else f"{number:0{width}d}"
        if naming == "slug":
            stem += f"-{slug(prompt)}"
        items.append(BatchItem(number, prompt, out / f"{stem}.{fmt}", ident))
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
    journal: Journal | None = None,
) -> list[BatchResult]:
    """Write every item's answer to its file, ``concurrency`` at a time; results in item order.

    ``on_done`` is called as each item ends (for progress), after its row is in ``journal``
    (``manifest.jsonl``, on disk before the next item is reported). Errors other than a
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
            result = await synthesize_one(pipe, item, bitrate, smooth_joins, pause_ms)
        if journal is not None:
            await journal.append(result)
        results[position] = result
        if on_done is not None:
            on_done(result)

    async with anyio.create_task_group() as tg:
        for position, item in enumerate(items):
            tg.start_soon(one, position, item)
    return [r for r in results if r is not None]


async def synthesize_one(
    pipe: Pipeline,
    item: BatchItem,
    bitrate: str | None = None,
    smooth_joins: bool = True,
    pause_ms: float = 0.0,
) -> BatchResult:
    """One item to its file; a ``VoicepipeError`` is recorded in the result, not raised.

    WAV streams into a hidden temporary file that takes the final name when the run ends
    (encoded formats do so already), and the file is fsynced first: a crash or a killed
    worker leaves either the whole previous file or the whole new one under that name.
    """
    result = BatchResult(item.number, item.prompt, item.path.name, item.id)
    staged = item.path
    seconds = 0.0
    run: Run | None = None
    try:
        if item.path.suffix.lower() == ".wav":
            staged = private_temp(item.path, ".partial.wav")
        sink = file_sink(staged, bitrate=bitrate, smooth_joins=smooth_joins, pause_ms=pause_ms)
        try:
            async with pipe.run(item.prompt, sink) as run:
                pass
            result.ok = True
        except VoicepipeError as exc:
            result.error = str(exc) or type(exc).__name__
        seconds = sink.seconds
        if seconds > 0:  # else nothing to publish (and no thread to wait for)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_publish, staged, item.path)
    except AudioError as exc:
        result.ok, result.error = False, str(exc)
    finally:
        if staged != item.path:
            staged.unlink(missing_ok=True)
    if run is not None:
        result.text = " ".join(run.chunks)
        result.answer = run.answer
        result.duration_s = round(seconds, 3)
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


def _publish(staged: Path, final: Path) -> None:
    """Give ``staged`` (which holds audio) its final name once its bytes are on disk."""
    if not staged.exists():
        return  # the encoder failed, and said so
    path = staged
    try:
        if staged != final:
            os.chmod(staged, new_file_mode(final))
        with open(staged, "rb") as f:
            os.fsync(f.fileno())
        if staged != final:
            os.replace(staged, final)
            path = final
        fsync_dir(path.parent)
    except OSError as exc:
        raise AudioError(f"cannot write {final}: {exc.strerror or exc}") from exc


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable (a no-op where folders cannot be)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    _write_atomically(json_path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    rows = [r.row() for r in results]
    columns = list(rows[0]) if rows else ["number", "prompt", "file", "id", "ok", "error"]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    _write_atomically(csv_path, table.getvalue())
    return json_path, csv_path


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one rename, so a crash leaves the old manifest or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AudioError(f"cannot write {path}: {exc.strerror or exc}") from exc


def remove_partials(items: Sequence[BatchItem]) -> int:
    """Delete the hidden temporary files a killed run left for these items; how many.

    They are named ``.<file>.<random>.partial[.wav]`` (:func:`private_temp`) beside the
    file: only those of the planned names are touched, in one pass over each folder.
    """
    names: dict[Path, set[str]] = {}
    for item in items:
        names.setdefault(item.path.parent, set()).add(item.path.name)
    removed = 0
    for folder, planned in names.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if not name.startswith(".") or ".partial" not in name:
                continue
            target = name[1:].split(".partial", 1)[0].rpartition(".")[0]
            if target in planned and entry.is_file(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                    removed += 1
                except OSError:
                    pass
    return removed
