"""The trace store: runs round-trip, text only when asked, never a key or a credential; it
lives in the platform's user data folder and carries a schema version."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import platformdirs
import pytest

from tests.cli.test_cli import voicepipe
from voicepipe import timeline as tl
from voicepipe.apps.traces import SCHEMA_VERSION, TraceStore, default_path, safe_config
from voicepipe.errors import ConfigError
from voicepipe.pipeline import Run
from voicepipe.timeline import Event, Timeline

ANSWER = "Hello there, friend. The sky is blue."


def known_run() -> Run:
    timeline = Timeline()
    for name, t, data in [
        (tl.LLM_REQUEST, 100.000, {"provider": "openai"}),
        (tl.LLM_DELTA, 100.120, {"chars": 5}),
        (tl.TEXT_CHUNK, 100.300, {"index": 0, "text": "Hello there, friend."}),
        (tl.TTS_REQUEST, 100.301, {"index": 0, "chars": 20}),
        (tl.TTS_AUDIO, 100.380, {"index": 0, "seconds": 0.5}),
        (tl.SINK_AUDIO, 100.382, {"index": 0, "seconds": 0.5, "queued_s": 0.0}),
        (tl.TTS_DONE, 100.400, {"index": 0, "seconds": 0.5}),
        (tl.RUN_END, 101.000, {}),
        (tl.UNDERRUN, 100.900, {"seconds": 0.04}),  # the sink reports underruns at the end
    ]:
        timeline.add(Event(name, t, data))
    return Run(
        timeline=timeline,
        answer=ANSWER,
        chunks=["Hello there, friend.", "The sky is blue."],
        audio_seconds=0.5,
    )


def test_a_run_round_trips_with_its_metrics(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "sub" / "traces.sqlite")  # the folder is created
    run = known_run()
    run_id = store.save(run, command="synth", config={"llm": "openai:gpt-4o-mini"})
    trace = store.load(run_id)
    # The same figures, from times relative to the request; the chunk text was not kept.
    expected = {**run.metrics.as_dict(), "first_chunk_text": None}
    assert trace.metrics.as_dict() == pytest.approx(expected)
    assert [e.name for e in trace.timeline.events] == [e.name for e in run.timeline.events]
    assert trace.timeline.events[0].t == 0.0
    assert trace.info.command == "synth" and trace.info.config == {"llm": "openai:gpt-4o-mini"}
    assert trace.info.answer_chars == len(ANSWER) and trace.info.speech_chars == 36
    assert trace.info.audio_ms == pytest.approx(500)
    assert trace.info.ttfa_ms == pytest.approx(382)
    assert trace.prompt is None and trace.answer is None


def test_text_is_stored_only_when_asked(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    store = TraceStore(db)
    config = {"llm": "text", "system": "You are a pirate."}
    plain = store.save(known_run(), command="say", config=config, prompt="Why blue?")
    raw = db.read_bytes()
    assert b"Hello there" not in raw and b"Why blue" not in raw and b"pirate" not in raw
    chunk = next(store.load(plain).timeline.all(tl.TEXT_CHUNK))
    assert chunk.data == {"index": 0, "chars": 20}
    full = store.load(
        store.save(known_run(), command="say", config=config, prompt="Why blue?", text=True)
    )
    assert full.prompt == "Why blue?" and full.answer == ANSWER
    assert full.info.config["system"] == "You are a pirate."
    assert full.metrics.first_chunk_text == "Hello there, friend."


def test_no_key_or_credential_reaches_the_file(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    config = {
        "llm": "openai:gpt-4o-mini",
        "llm_url": "https://bob:hunter2@llm.example/v1?api_key=sk-live-123",
        "api_key": "sk-live-456",
        "OPENAI_API_KEY": "sk-live-789",
        "auth_token": "tok-1",
        "max_tokens": 60,
    }
    assert safe_config(config) == {
        "llm": "openai:gpt-4o-mini",
        "llm_url": "https://llm.example/v1",
        "max_tokens": 60,
    }
    TraceStore(db).save(known_run(), command="bench", config=config, text=True)
    raw = db.read_bytes()
    for secret in (b"hunter2", b"sk-live", b"tok-1", b"bob"):
        assert secret not in raw


def test_recent_lists_newest_first_and_limits(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.sqlite")
    ids = [store.save(known_run(), command=f"c{i}", config={}) for i in range(4)]
    listed = store.recent(limit=3)
    assert [i.id for i in listed] == ids[::-1][:3]
    assert [i.command for i in listed] == ["c3", "c2", "c1"]


def test_missing_store_or_id_says_what_to_do(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "none.sqlite")
    with pytest.raises(ConfigError, match="no traces recorded yet"):
        store.recent()
    assert not store.path.exists()  # listing never creates the file
    store.save(known_run(), command="say", config={})
    with pytest.raises(ConfigError, match="voicepipe traces"):
        store.load(999)


def test_deleting_a_run_deletes_its_events(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    run_id = TraceStore(db).save(known_run(), command="say", config={})
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (9,)
        conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)


def test_default_path_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VOICEPIPE_TRACE_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_path() == tmp_path / "data" / "voicepipe" / "traces.sqlite"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_path() == tmp_path / ".local" / "share" / "voicepipe" / "traces.sqlite"
    monkeypatch.setenv("VOICEPIPE_TRACE_DB", str(tmp_path / "x.sqlite"))
    assert default_path() == tmp_path / "x.sqlite"


def test_default_path_is_the_platforms_user_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VOICEPIPE_TRACE_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    expected = platformdirs.user_data_path("voicepipe", appauthor=False) / "traces.sqlite"
    assert default_path() == expected == tmp_path / "data" / "voicepipe" / "traces.sqlite"


def user_version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_a_new_store_carries_the_schema_version(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.sqlite")
    store.save(known_run(), command="say", config={})
    assert user_version(store.path) == SCHEMA_VERSION == 2


# The store as voicepipe wrote it before schema versions (user_version 0), with one run.
LEGACY = """
CREATE TABLE runs (id INTEGER PRIMARY KEY, created REAL NOT NULL, command TEXT NOT NULL,
    config TEXT NOT NULL, prompt TEXT, answer TEXT, answer_chars INTEGER NOT NULL,
    speech_chars INTEGER NOT NULL, audio_ms REAL NOT NULL, ttfa_ms REAL, total_ms REAL);
CREATE TABLE events (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, name TEXT NOT NULL, t_ms REAL NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq));
INSERT INTO runs VALUES (7, 1700000000.0, 'say', '{"llm": "local"}', NULL, NULL, 5, 5, 500.0,
    382.0, 1000.0);
INSERT INTO events VALUES (7, 0, 'llm.request', 0.0, '{}'), (7, 1, 'sink.audio', 382.0,
    '{"index": 0, "seconds": 0.5}'), (7, 2, 'run.end', 1000.0, '{}');
"""


def test_a_store_from_before_versions_is_migrated_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(LEGACY)
    store = TraceStore(path)
    (info,) = store.recent()
    assert (info.id, info.command, info.config, info.ttfa_ms) == (7, "say", {"llm": "local"}, 382)
    assert store.load(7).metrics.ttfa_ms == pytest.approx(382.0)
    assert user_version(path) == SCHEMA_VERSION
    assert store.save(known_run(), command="synth", config={}) == 8


def test_a_store_from_a_newer_voicepipe_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    TraceStore(path).save(known_run(), command="say", config={})
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes()
    store = TraceStore(path)
    for attempt in (store.recent, lambda: store.save(known_run(), command="say", config={})):
        with pytest.raises(ConfigError) as caught:
            attempt()
        message = str(caught.value)
        assert f"schema version {SCHEMA_VERSION + 1}, from a newer voicepipe" in message
        assert "upgrade voicepipe" in message and "--db FILE" in message
    assert path.read_bytes() == before


def test_the_cli_refuses_a_newer_store_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    TraceStore(path).save(known_run(), command="say", config={})
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 99")
    result = voicepipe("traces", "--db", str(path))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "schema version 99, from a newer voicepipe" in line


def heard_run() -> Run:
    """``known_run`` played on a device: its first sample left the speaker at 475 ms."""
    run = known_run()
    data = {"device_latency_s": 0.008, "ahead_s": 0.008, "stamped": False}
    run.timeline.add(Event(tl.AUDIBLE, 100.475, data))
    return run


def test_audible_ms_is_stored_listed_and_shown(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    store = TraceStore(db)
    played = store.save(heard_run(), command="say", config={"llm": "text"})
    filed = store.save(known_run(), command="synth", config={"llm": "text"})
    assert store.load(played).info.audible_ms == pytest.approx(475)
    assert store.load(played).metrics.audible_ms == pytest.approx(475)
    assert store.load(played).metrics.output_latency_ms == pytest.approx(93)
    assert store.load(filed).info.audible_ms is None
    listing = voicepipe("traces", "--db", str(db))
    assert listing.returncode == 0, listing.stderr
    assert "audible ms" in listing.stdout
    (row,) = [line for line in listing.stdout.splitlines() if " say " in line]
    assert " 475 " in row
    shown = voicepipe("traces", "--db", str(db), "show", str(played))
    assert shown.returncode == 0, shown.stderr
    assert "audible 475 ms: left the speaker 93 ms after TTFA" in shown.stdout
    assert "sink.audible" in shown.stdout
    assert "audible" not in voicepipe("traces", "--db", str(db), "show", str(filed)).stdout


def test_a_version_1_store_gains_audible_ms_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(LEGACY)
        conn.execute("PRAGMA user_version = 1")
    store = TraceStore(path)
    (info,) = store.recent()
    assert (info.id, info.ttfa_ms, info.audible_ms) == (7, 382, None)
    assert store.load(7).metrics.audible_ms is None
    assert user_version(path) == SCHEMA_VERSION
    new = store.save(heard_run(), command="say", config={})
    assert [i.audible_ms for i in store.recent()] == [pytest.approx(475), None]
    assert new == 8
