"""Recorded runs in SQLite: config, every timeline event, text and audio sizes.

The file is ``$VOICEPIPE_TRACE_DB``, else ``traces.sqlite`` in the user data folder
platformdirs names for ``voicepipe`` (Linux: ``$XDG_DATA_HOME/voicepipe``, default
``~/.local/share/voicepipe``; macOS: ``~/Library/Application Support/voicepipe``; Windows:
``%LOCALAPPDATA%\\voicepipe``). The store carries a schema version (SQLite's
``user_version``): an older store is migrated on open, in one transaction; a newer one, written
by a later voicepipe, is refused with a message and left as it is. Prompts, answers and chunk
text are kept only when
asked (``text=True``); API keys never are: configs hold specs and credential-free URLs only.
The file is readable by its owner only (0600; SQLite gives its journal the same), and so is
the folder the store creates for it (0700), since both may hold the user's words.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import platformdirs

from voicepipe import timeline as tl
from voicepipe.errors import ConfigError
from voicepipe.metrics import RunMetrics, run_metrics
from voicepipe.pipeline import Run
from voicepipe.timeline import Event, Timeline
from voicepipe.transport.wording import public_url

__all__ = [
    "SCHEMA_VERSION",
    "Trace",
    "TraceInfo",
    "TraceStore",
    "default_path",
    "record",
    "schema_version",
]

DB_ENV = "VOICEPIPE_TRACE_DB"
# Names of settings that hold secrets: api_key, OPENAI_API_KEY, auth_token (not max_tokens).
_SECRET_KEY = re.compile(
    r"(?:^|_)(?:api_?key|key|token|secret|password|passwd|auth|authorization|cookie)(?:$|_)",
    re.IGNORECASE,
)
_TEXT_KEYS = ("text", "prompt", "system", "answer")

# The schema this voicepipe writes. Stores from before versions existed read 0; they hold the
# version-1 tables already (or none), which the first migration creates if missing. Version 2
# adds ``audible_ms`` (older runs read NULL: they did not measure it).
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,          -- unix time the run was recorded
    command TEXT NOT NULL,          -- say, synth, bench, chat, ...
    config TEXT NOT NULL,           -- JSON: specs, chunking, credential-free URLs
    prompt TEXT,                    -- only with text=True
    answer TEXT,                    -- only with text=True
    answer_chars INTEGER NOT NULL,  -- what the LLM wrote
    speech_chars INTEGER NOT NULL,  -- what went to the TTS
    audio_ms REAL NOT NULL,
    ttfa_ms REAL,
    total_ms REAL
);
CREATE TABLE IF NOT EXISTS events (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    t_ms REAL NOT NULL,             -- from the LLM request
    data TEXT NOT NULL,             -- JSON
    PRIMARY KEY (run_id, seq)
);
"""

# _MIGRATIONS[v] takes a store from version v to v + 1: statements run in one transaction.
_MIGRATIONS: list[list[str]] = [
    [statement.strip() for statement in _SCHEMA.split(";") if statement.strip()],
    # When the first sample left the speaker, ms from the LLM request (playback only).
    ["ALTER TABLE runs ADD COLUMN audible_ms REAL"],
]
assert len(_MIGRATIONS) == SCHEMA_VERSION


def default_path() -> Path:
    """Where traces are kept (see the module docstring)."""
    override = os.environ.get(DB_ENV)
    if override:
        return Path(override).expanduser()
    return _data_dir() / "traces.sqlite"


def _data_dir() -> Path:
    return platformdirs.user_data_path("voicepipe", appauthor=False)


def schema_version(db: sqlite3.Connection) -> int:
    """The schema version stamped in an open store (0: from before versions)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the store to :data:`SCHEMA_VERSION`, or refuse one a newer voicepipe wrote."""
    if schema_version(db) == SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")  # another process may be migrating the same file
    try:
        version = schema_version(db)
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"the trace store {path} has schema version {version}, from a newer voicepipe "
                f"(this one knows up to {SCHEMA_VERSION}): upgrade voicepipe, or keep this "
                f"version's traces elsewhere with --db FILE or {DB_ENV}"
            )
        for step in _MIGRATIONS[version:]:
            for statement in step:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _private_file(path: Path) -> None:
    """Create ``path`` owner-only if it is missing; make it owner-only if it is ours and not.

    Its folder is made owner-only when created here, and so is voicepipe's own data folder
    (older versions made it 0755); a folder the user chose (``$VOICEPIPE_TRACE_DB``) is theirs.
    """
    folder = path.parent
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    elif folder == _data_dir() and _shared_but_ours(folder):
        folder.chmod(0o700)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        if _shared_but_ours(path):
            path.chmod(0o600)


def _shared_but_ours(path: Path) -> bool:
    info = path.stat()
    return bool(info.st_mode & 0o077) and info.st_uid == os.getuid()


def safe_config(config: Mapping[str, Any], *, text: bool = False) -> dict[str, Any]:
    """``config`` without secrets: key-like names dropped, URLs stripped of credentials."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if _SECRET_KEY.search(key) or (key in _TEXT_KEYS and not text):
            continue
        if isinstance(value, str) and "://" in value:
            value = public_url(value)
        out[key] = value
    return out


def _event_data(event: Event, text: bool) -> dict[str, Any]:
    data = dict(event.data)
    if not text and isinstance(data.get("text"), str):
        data["chars"] = len(data.pop("text"))
    return data


@dataclass(frozen=True)
class TraceInfo:
    """One stored run, as listed."""

    id: int
    created: float
    command: str
    config: dict[str, Any]
    answer_chars: int
    speech_chars: int
    audio_ms: float
    ttfa_ms: float | None
    total_ms: float | None
    audible_ms: float | None = None  # playback only (and runs recorded since schema 2)


@dataclass(frozen=True)
class Trace:
    """One stored run in full: its timeline (times in seconds from the LLM request)."""

    info: TraceInfo
    timeline: Timeline
    prompt: str | None
    answer: str | None

    @property
    def metrics(self) -> RunMetrics:
        return run_metrics(self.timeline)


class TraceStore:
    """The SQLite file of recorded runs. Calls block: from async code use :func:`record`."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()

    @contextmanager
    def _connect(self, create: bool = True) -> Iterator[sqlite3.Connection]:
        if not create and not self.path.exists():
            raise ConfigError(f"no traces recorded yet ({self.path} does not exist)")
        try:
            if create:
                _private_file(self.path)
            with closing(sqlite3.connect(self.path)) as db:
                db.execute("PRAGMA foreign_keys = ON")
                _migrate(db, self.path)
                with db:  # one transaction
                    yield db
        except sqlite3.Error as exc:
            raise ConfigError(f"trace store {self.path}: {exc} (set {DB_ENV} elsewhere?)") from exc
        except OSError as exc:
            raise ConfigError(f"cannot create the trace store {self.path}: {exc}") from exc

    def save(
        self,
        run: Run,
        *,
        command: str,
        config: Mapping[str, Any],
        prompt: str | None = None,
        text: bool = False,
    ) -> int:
        """Store ``run``; the prompt, answer and chunk text only when ``text``. Returns its id."""
        timeline = run.timeline
        start = timeline.first(tl.LLM_REQUEST)
        origin = start.t if start is not None else (timeline.events[0].t if timeline.events else 0)
        m = run.metrics if start is not None else None
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO runs (created, command, config, prompt, answer, answer_chars,"
                " speech_chars, audio_ms, ttfa_ms, total_ms, audible_ms)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    time.time(),
                    command,
                    json.dumps(safe_config(config, text=text)),
                    prompt if text else None,
                    run.answer if text else None,
                    len(run.answer),
                    sum(len(c) for c in run.chunks),
                    run.audio_seconds * 1000.0,
                    None if m is None else m.ttfa_ms,
                    None if m is None else m.total_ms,
                    None if m is None else m.audible_ms,
                ),
            )
            run_id = cursor.lastrowid
            assert run_id is not None
            db.executemany(
                "INSERT INTO events (run_id, seq, name, t_ms, data) VALUES (?,?,?,?,?)",
                [
                    (
                        run_id,
                        seq,
                        e.name,
                        (e.t - origin) * 1000.0,
                        json.dumps(_event_data(e, text), default=str),
                    )
                    for seq, e in enumerate(timeline.events)
                ],
            )
        return run_id

    def recent(self, limit: int = 20) -> list[TraceInfo]:
        """The latest ``limit`` runs, newest first."""
        with self._connect(create=False) as db:
            rows = db.execute(
                f"SELECT {_INFO_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_info(row) for row in rows]

    def load(self, run_id: int) -> Trace:
        """The run with this id, its timeline rebuilt."""
        with self._connect(create=False) as db:
            row = db.execute(
                f"SELECT {_INFO_COLUMNS}, prompt, answer FROM runs WHERE id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                raise ConfigError(f"no trace {run_id}: `voicepipe traces` lists the recorded ones")
            events = db.execute(
                "SELECT name, t_ms, data FROM events WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        timeline = Timeline()
        for name, t_ms, data in events:
            timeline.add(Event(name, t_ms / 1000.0, json.loads(data)))
        return Trace(_info(row[:10]), timeline, row[10], row[11])


_INFO_COLUMNS = (
    "id, created, command, config, answer_chars, speech_chars, audio_ms, ttfa_ms, total_ms,"
    " audible_ms"
)


def _info(row: tuple[Any, ...]) -> TraceInfo:
    return TraceInfo(
        id=row[0],
        created=row[1],
        command=row[2],
        config=json.loads(row[3]),
        answer_chars=row[4],
        speech_chars=row[5],
        audio_ms=row[6],
        ttfa_ms=row[7],
        total_ms=row[8],
        audible_ms=row[9],
    )


async def record(
    runs: Sequence[tuple[Run, Mapping[str, Any], str | None]],
    *,
    command: str,
    text: bool = False,
    store: TraceStore | None = None,
) -> list[int]:
    """Store ``(run, config, prompt)`` triples off the event loop; returns their ids."""
    target = store or TraceStore()

    def save_all() -> list[int]:
        return [
            target.save(run, command=command, config=config, prompt=prompt, text=text)
            for run, config, prompt in runs
        ]

    return await anyio.to_thread.run_sync(save_all)
