"""The trace store holds prompts and answers (with --trace-text): only its owner may read it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.apps.test_traces import known_run
from voicepipe.apps.traces import TraceStore, default_path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> object:
    """The usual 022, so a file made without care would be world-readable."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_store_and_its_folder_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "traces.sqlite"
    store = TraceStore(path)
    run_id = store.save(known_run(), command="say", config={}, prompt="secret words", text=True)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert store.load(run_id).prompt == "secret words"
    assert all(mode(p) & 0o077 == 0 for p in path.parent.iterdir())  # journals too


def test_a_store_made_world_readable_before_is_tightened(tmp_path: Path) -> None:
    chosen = tmp_path / "shared"
    chosen.mkdir(mode=0o755)
    path = chosen / "traces.sqlite"
    TraceStore(path).save(known_run(), command="say", config={})
    path.chmod(0o644)
    TraceStore(path).save(known_run(), command="say", config={})
    assert mode(path) == 0o600
    assert mode(chosen) == 0o755  # a folder the user chose stays as it was


def test_voicepipes_own_data_folder_is_tightened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VOICEPIPE_TRACE_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    (tmp_path / "voicepipe").mkdir(mode=0o755)
    TraceStore().save(known_run(), command="say", config={})
    assert default_path() == tmp_path / "voicepipe" / "traces.sqlite"
    assert mode(tmp_path / "voicepipe") == 0o700 and mode(default_path()) == 0o600
