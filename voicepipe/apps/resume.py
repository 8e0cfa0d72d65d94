"""Resumable batches: a journal that survives ``kill -9``, and what a rerun may skip.

``manifest.jsonl`` gets one JSON line per finished item, written whole, flushed and fsynced
before the item counts as done; the audio file was fsynced under its final name before that.
So after a crash the journal is readable (at worst its last line is torn, and reading skips
it), and every row marked ok names a complete file. A rerun keeps an item when its row is
ok, has the same id (prompt and settings), and the file still decodes to the duration in
the row; everything else is done again. ``manifest.json``/``.csv`` are written at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, BinaryIO

import anyio

from voicepipe.apps.batch import BatchItem, BatchResult, fsync_dir
from voicepipe.errors import AudioError

__all__ = ["JOURNAL", "Journal", "ResumePlan", "check_output", "plan_resume", "read_journal"]

JOURNAL = "manifest.jsonl"
# How far a file's decoded length may be from its row: WAV is exact (a rounding step);
# encoders add priming and padding (MP3 ~50 ms, AAC 1024 samples) that a decoder may keep.
WAV_TOLERANCE_S = 0.002
ENCODED_TOLERANCE_S = 0.15
DECODE_TO_PCM = ("-f", "s16le", "-ac", "1", "-ar", "8000", "-")  # 16,000 bytes a second


def read_journal(path: str | Path) -> tuple[dict[str, dict[str, Any]], int]:
    """The journal's rows by item id (a later row wins), and how many lines were unreadable.

    A torn last line (the process died mid-write) is one such line; a missing file is empty.
    Rows whose file a later row (of another id) wrote again are dropped: that file now holds
    the other answer.
    """
    rows: dict[str, dict[str, Any]] = {}
    bad = 0
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return rows, 0
    except OSError as exc:
        raise AudioError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("id"), str) and row["id"]:
            rows.pop(row["id"], None)  # keep the order of writing
            rows[row["id"]] = row
        else:
            bad += 1
    # The last writer of a file wins (a failed item may have left part of its answer there).
    owner = {r.get("file"): k for k, r in rows.items()}
    stale = [k for k, r in rows.items() if r.get("ok") and owner.get(r.get("file")) != k]
    for k in stale:
        del rows[k]
    return rows, bad


def result_from_row(row: dict[str, Any]) -> BatchResult:
    """A journal row back as a result (unknown keys, from a newer version, are dropped)."""
    names = {f.name for f in fields(BatchResult)}
    return BatchResult(**{k: v for k, v in row.items() if k in names})


class Journal:
    """``manifest.jsonl``, appended one whole, fsynced line per finished item.

    One writer at a time (the process that runs the batch, even when Ray workers make the
    audio). Opening cuts off a torn last line, so the next row starts on a line of its own.
    """

    def __init__(self, path: str | Path, *, fresh: bool = False) -> None:
        self.path = Path(path)
        self._fresh = fresh
        self._file: BinaryIO | None = None
        self._lock = anyio.Lock()

    def open(self) -> Journal:
        try:
            new = self._fresh or not self.path.exists()
            f = open(self.path, "wb" if self._fresh else "ab+")
            if not self._fresh:
                _cut_torn_tail(f)
        except OSError as exc:
            raise AudioError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self._file = f
        if new:
            fsync_dir(self.path.parent)
        return self

    async def append(self, result: BatchResult) -> None:
        line = json.dumps(_row(result), ensure_ascii=False).encode("utf-8") + b"\n"
        async with self._lock:
            with anyio.CancelScope(shield=True):  # a row is written whole or not at all
                await anyio.to_thread.run_sync(self._write, line)

    def _write(self, line: bytes) -> None:
        if self._file is None:
            raise AudioError(f"{self.path} is not open")
        try:
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise AudioError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Journal:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _row(result: BatchResult) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(result)


def _cut_torn_tail(f: BinaryIO) -> None:
    """Truncate ``f`` (opened ``ab+``) after its last newline."""
    end = f.seek(0, os.SEEK_END)
    if end == 0:
        return
    f.seek(end - 1)
    if f.read(1) == b"\n":
        return
    pos = end
    while pos > 0:  # back to the last newline, a block at a time
        start = max(0, pos - 4096)
        f.seek(start)
        block = f.read(pos - start)
        i = block.rfind(b"\n")
        if i >= 0:
            f.truncate(start + i + 1)
            return
        pos = start
    f.truncate(0)


def check_output(path: Path, duration_s: float) -> str | None:
    """Why ``path`` is not a complete answer of ``duration_s`` seconds, or None when it is.

    WAV is read with the standard library (header and data must agree); other formats are
    decoded to the end with ffmpeg, so a truncated or corrupt file is caught, not just a
    bad header.
    """
    if not path.is_file():
        return "the file is missing"
    if path.suffix.lower() == ".wav":
        try:
            with wave.open(str(path), "rb") as w:
                frames, rate = w.getnframes(), w.getframerate()
                width, channels = w.getsampwidth(), w.getnchannels()
                got = len(w.readframes(frames))
        except (OSError, EOFError, wave.Error) as exc:
            return f"the file does not decode ({exc})"
        if got < frames * width * channels:
            return "the file is shorter than its header says"
        seconds, tolerance = frames / rate, WAV_TOLERANCE_S
    else:
        try:
            proc = subprocess.run(
                [*("ffmpeg", "-v", "error", "-nostdin", "-i", str(path)), *DECODE_TO_PCM],
                capture_output=True,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"the file could not be decoded ({exc})"
        if proc.returncode != 0 or proc.stderr.strip():
            first = (proc.stderr.decode(errors="replace").strip().splitlines() or ["?"])[0]
            return f"the file does not decode ({first})"
        seconds, tolerance = len(proc.stdout) / 2 / 8000, ENCODED_TOLERANCE_S
    if abs(seconds - duration_s) > tolerance:
        return f"the file holds {seconds:.2f} s of audio, the manifest says {duration_s:.2f} s"
    return None


@dataclass
class ResumePlan:
    """What a rerun finds in the out dir: what to keep, what to do, and what changed."""

    todo: list[BatchItem] = field(default_factory=list)
    kept: list[BatchResult] = field(default_factory=list)
    new: list[BatchItem] = field(default_factory=list)  # ids the journal never saw
    redo: list[tuple[BatchItem, str]] = field(default_factory=list)  # had a row; why again
    gone: list[BatchResult] = field(default_factory=list)  # rows no prompt asks for now
    unreadable_lines: int = 0

    def messages(self, overwritten: Iterable[str] = ()) -> list[str]:
        """Lines for the user: what is skipped, what is new, what no longer matches."""
        out: list[str] = []
        total = len(self.kept) + len(self.todo)
        if self.kept:
            out.append(f"resuming: {len(self.kept)} of {total} files are done and kept")
        if self.unreadable_lines:
            out.append(f"{self.unreadable_lines} unreadable line(s) in the journal skipped")
        if self.new and (self.kept or self.redo or self.gone):
            out.append(
                f"{len(self.new)} new prompt(s) since the last run: "
                + _listing(f"#{i.number} {_quote(i.prompt)}" for i in self.new)
            )
        if self.redo:
            out.append(
                f"{len(self.redo)} to do again: "
                + _listing(f"{i.path.name} ({why})" for i, why in self.redo)
            )
        if self.gone:
            again = set(overwritten)
            out.append(
                f"{len(self.gone)} file(s) no longer match a prompt (the prompts file or the "
                "settings changed): "
                + _listing(
                    f"{r.file} was {_quote(r.prompt)}"
                    + (" (to be overwritten)" if r.file in again else "")
                    for r in self.gone
                )
            )
        return out


def _quote(text: str, limit: int = 40) -> str:
    return json.dumps(text if len(text) <= limit else text[: limit - 1] + "…", ensure_ascii=False)


def _listing(parts: Iterable[str], limit: int = 5) -> str:
    shown = list(parts)
    more = len(shown) - limit
    return "; ".join(shown[:limit]) + (f"; and {more} more" if more > 0 else "")


async def plan_resume(
    items: Sequence[BatchItem], out_dir: str | Path, *, checks: int = 4
) -> ResumePlan:
    """Compare ``items`` with the journal in ``out_dir`` and the files it names.

    Files are checked ``checks`` at a time on worker threads (decoding is the slow part).
    """
    out = Path(out_dir)
    rows, bad = await anyio.to_thread.run_sync(read_journal, out / JOURNAL)
    plan = ResumePlan(unreadable_lines=bad)
    planned = {i.id for i in items}
    plan.gone = [result_from_row(r) for k, r in rows.items() if k not in planned and r.get("ok")]
    verdicts: dict[str, str | None] = {}
    limiter = anyio.CapacityLimiter(checks)

    async def check(item: BatchItem, row: dict[str, Any]) -> None:
        async with limiter:
            verdicts[item.id] = await anyio.to_thread.run_sync(
                check_output, item.path, float(row.get("duration_s") or 0.0)
            )

    async with anyio.create_task_group() as tg:
        for item in items:
            row = rows.get(item.id)
            if row is not None and row.get("ok") and row.get("file") == item.path.name:
                tg.start_soon(check, item, row)
    for item in items:
        row = rows.get(item.id)
        if row is None:
            plan.new.append(item)
            plan.todo.append(item)
        elif not row.get("ok"):
            plan.redo.append((item, f"failed before: {row.get('error') or '?'}"))
            plan.todo.append(item)
        elif row.get("file") != item.path.name:
            plan.redo.append((item, f"it was {row.get('file')}"))
            plan.todo.append(item)
        elif (why := verdicts.get(item.id)) is not None:
            plan.redo.append((item, why))
            plan.todo.append(item)
        else:
            kept = result_from_row(row)
            kept.number = item.number  # the line may have moved in the prompts file
            plan.kept.append(kept)
    return plan
