"""Resumable batches: the journal survives kill -9, a rerun does only what is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import wave
from collections import Counter
from pathlib import Path

import anyio
import numpy as np
import pytest

from tests import ROOT_DIR
from tests.engines import ToneTTS
from voicepipe.apps.batch import BatchResult, plan_batch, remove_partials, synthesize_batch
from voicepipe.apps.resume import JOURNAL, Journal, check_output, plan_resume, read_journal
from voicepipe.audio.wav import wav_header
from voicepipe.llm.text import TextSource
from voicepipe.pipeline import Pipeline


def journal_rows(out: Path) -> list[dict[str, object]]:
    """Every whole line of the journal, in order (a torn last one is not whole)."""
    rows = []
    for line in (out / JOURNAL).read_bytes().split(b"\n"):
        if line.strip():
            rows.append(json.loads(line))
    return rows


def write_tone_wav(path: Path, seconds: float, rate: int = 16000) -> None:
    samples = (np.sin(np.arange(int(seconds * rate)) / 5) * 8000).astype("<i2").tobytes()
    path.write_bytes(wav_header(rate, len(samples)) + samples)


def test_ids_follow_the_prompt_and_settings_not_the_line() -> None:
    a = plan_batch(["Hi.", "Bye.", "Hi."], "o", settings={"tts": "espeak"})
    b = plan_batch(["New.", "Hi.", "Bye.", "Hi."], "o", settings={"tts": "espeak"})
    c = plan_batch(["Hi."], "o", settings={"tts": "piper"})
    assert [i.id for i in a] == [i.id for i in b[1:]]  # lines moved, ids kept
    assert a[0].id != a[2].id  # a repeated prompt is a second item, not the same file
    assert c[0].id != a[0].id  # another voice: another item
    assert plan_batch(["Hi."], "o", "mp3")[0].id != plan_batch(["Hi."], "o", "wav")[0].id
    named = plan_batch(["Hi.", "Bye."], "o", "flac", "id")
    assert [i.path.name for i in named] == [f"{i.id}.flac" for i in named]


@pytest.mark.anyio
async def test_journal_survives_a_torn_line_and_appends_on_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL
    with Journal(path) as journal:
        await journal.append(BatchResult(1, "One.", "001.wav", "aaa", ok=True, duration_s=1.0))
    with path.open("ab") as f:  # what a kill -9 in the middle of a write leaves
        f.write(b'{"number": 2, "prompt": "Two.", "file": "002.wav", "id": "bb')
    rows, bad = read_journal(path)
    assert list(rows) == ["aaa"] and bad == 1
    with Journal(path) as journal:
        await journal.append(BatchResult(2, "Two.", "002.wav", "bbb", ok=True, duration_s=2.0))
    rows, bad = read_journal(path)
    assert list(rows) == ["aaa", "bbb"] and bad == 0  # the torn line is gone, not glued on
    assert rows["bbb"]["duration_s"] == 2.0


def test_a_file_written_again_by_another_item_is_no_longer_the_first_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / JOURNAL
    rows = [
        {"id": "x", "file": "003.wav", "ok": True, "duration_s": 1.0},
        {"id": "y", "file": "003.wav", "ok": True, "duration_s": 1.0},
        {"id": "z", "file": "004.wav", "ok": True, "duration_s": 1.0},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert list(read_journal(path)[0]) == ["y", "z"]


def test_check_output_wav(tmp_path: Path) -> None:
    f = tmp_path / "a.wav"
    write_tone_wav(f, 1.0)
    assert check_output(f, 1.0) is None
    assert "manifest says 2.00 s" in (check_output(f, 2.0) or "")
    f.write_bytes(f.read_bytes()[:20000])  # cut short: the header promises more
    assert "shorter than its header" in (check_output(f, 1.0) or "")
    f.write_bytes(b"not a wav at all")
    assert "does not decode" in (check_output(f, 1.0) or "")
    assert check_output(tmp_path / "missing.wav", 1.0) == "the file is missing"


def test_check_output_decodes_encoded_files_to_the_end(tmp_path: Path) -> None:
    src = tmp_path / "a.wav"
    write_tone_wav(src, 2.0)
    mp3 = tmp_path / "a.mp3"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-b:a", "64k", str(mp3)], check=True
    )
    assert check_output(mp3, 2.0) is None
    mp3.write_bytes(mp3.read_bytes()[: mp3.stat().st_size // 2])
    assert check_output(mp3, 2.0) is not None  # half a file is not the answer
    mp3.write_bytes(b"\x00" * 100)
    assert "does not decode" in (check_output(mp3, 2.0) or "")


@pytest.mark.anyio
async def test_a_rerun_keeps_complete_files_and_redoes_the_rest(tmp_path: Path) -> None:
    prompts = ["One two three.", "Four five.", "Six seven eight nine.", "Ten."]
    items = plan_batch(prompts, tmp_path)
    tts = ToneTTS()
    with anyio.fail_after(20):
        async with Pipeline(TextSource(0), tts) as pipe:
            with Journal(tmp_path / JOURNAL) as journal:
                await synthesize_batch(pipe, items[:3], journal=journal)
            (tmp_path / "002.wav").write_bytes((tmp_path / "002.wav").read_bytes()[:100])
            # Prompts edited: one removed, one added; the line numbers move.
            edited = ["One two three.", "A new one.", "Four five.", "Ten."]
            again = plan_batch(edited, tmp_path)
            plan = await plan_resume(again, tmp_path)
            assert [r.prompt for r in plan.kept] == ["One two three."]
            assert [i.prompt for i in plan.new] == ["A new one.", "Ten."]
            assert [(i.prompt, why) for i, why in plan.redo] == [("Four five.", "it was 002.wav")]
            assert [r.prompt for r in plan.gone] == ["Six seven eight nine."]
            text = "\n".join(plan.messages({i.path.name for i in plan.todo}))
            assert '2 new prompt(s) since the last run: #2 "A new one."; #4 "Ten."' in text
            assert '003.wav was "Six seven eight nine." (to be overwritten)' in text
            tts.requests.clear()
            with Journal(tmp_path / JOURNAL) as journal:
                made = await synthesize_batch(pipe, plan.todo, journal=journal)
    assert [r.prompt for r in made] == ["A new one.", "Four five.", "Ten."]
    assert "One two three." not in tts.requests  # kept, not made again
    final = await plan_resume(again, tmp_path)
    assert len(final.kept) == 4 and not final.todo and not final.gone


@pytest.mark.anyio
async def test_a_damaged_file_is_made_again(tmp_path: Path) -> None:
    items = plan_batch(["One two three.", "Four five six."], tmp_path)
    async with Pipeline(TextSource(0), ToneTTS()) as pipe:
        with Journal(tmp_path / JOURNAL) as journal:
            await synthesize_batch(pipe, items, journal=journal)
    path = tmp_path / "002.wav"
    with wave.open(str(path), "rb") as w:
        frames = w.getnframes()
    data = path.read_bytes()
    path.write_bytes(wav_header(16000, frames) + data[44 : 44 + frames])  # half the samples
    plan = await plan_resume(items, tmp_path)
    assert [i.path.name for i, _ in plan.redo] == ["002.wav"]
    assert "holds" in plan.redo[0][1] and [r.file for r in plan.kept] == ["001.wav"]


def test_partials_of_planned_files_are_removed(tmp_path: Path) -> None:
    items = plan_batch(["a", "b"], tmp_path, "mp3")
    for name in [".001.mp3.k2j_x1.partial.wav", ".002.mp3.abc.partial", ".other.x.partial"]:
        (tmp_path / name).write_bytes(b"x")
    assert remove_partials(items) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.x.partial"]


def voicepipe(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "voicepipe", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT_DIR,
        **kwargs,  # type: ignore[call-overload]
    )


def wait_for_rows(out: Path, n: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (out / JOURNAL).exists() and len(journal_rows(out)) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"fewer than {n} rows in {timeout} s")


BATCH = ["synth", "--llm", "text", "--tts", "espeak", "--concurrency", "1"]


def test_kill_9_mid_batch_then_a_rerun_finishes_writing_each_prompt_once(tmp_path: Path) -> None:
    prompts = [
        f"Prompt {n}: the quick brown fox jumps over the lazy dog, twice." for n in range(12)
    ]
    (tmp_path / "p.txt").write_text("\n".join(prompts) + "\n")
    out = tmp_path / "out"
    args = [*BATCH, "--prompts", str(tmp_path / "p.txt"), "--out-dir", str(out)]
    first = voicepipe(*args)
    try:
        wait_for_rows(out, 3, first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert first.returncode == -signal.SIGKILL
    done_first = journal_rows(out)
    assert 3 <= len(done_first) < len(prompts), "the kill came after the batch ended"
    assert not (out / "manifest.json").exists()  # written at the end, and the end never came

    second = voicepipe(*args)
    _, stderr = second.communicate(timeout=120)
    assert second.returncode == 0, stderr
    assert f"resuming: {len(done_first)} of {len(prompts)} files are done and kept" in stderr
    rows = journal_rows(out)
    assert rows[: len(done_first)] == done_first  # the first run's rows, untouched
    counts = Counter(r["prompt"] for r in rows if r["ok"])
    assert counts == Counter(prompts)  # every prompt written, and exactly once
    doc = json.loads((out / "manifest.json").read_text())
    assert [i["prompt"] for i in doc["items"]] == prompts
    assert doc["summary"]["kept"] == len(done_first) and doc["summary"]["ok"] == len(prompts)
    for item in doc["items"]:
        assert check_output(out / item["file"], item["duration_s"]) is None
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [f"{n:03d}.wav" for n in range(1, 13)] + ["manifest.csv", "manifest.json", JOURNAL]
    )  # no half-written temporary file left behind

    third = voicepipe(*args)
    _, stderr = third.communicate(timeout=120)
    assert third.returncode == 0 and "12 kept from an earlier run" in stderr
    assert len(journal_rows(out)) == len(rows)  # nothing made again


def test_cli_says_what_changed_in_the_prompts_file(tmp_path: Path) -> None:
    p = tmp_path / "p.txt"
    p.write_text("First prompt.\nSecond prompt.\nThird prompt.\n")
    out = tmp_path / "out"
    args = [*BATCH, "--prompts", str(p), "--out-dir", str(out), "--names", "id"]
    assert voicepipe(*args).wait(timeout=120) == 0
    p.write_text("First prompt.\nThird prompt.\nA fourth one.\n")
    proc = voicepipe(*args)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "resuming: 2 of 3 files are done and kept" in stderr
    assert '1 new prompt(s) since the last run: #3 "A fourth one."' in stderr
    assert "1 file(s) no longer match a prompt" in stderr and '"Second prompt."' in stderr
    # --no-resume does all of them again.
    proc = voicepipe(*args, "--no-resume")
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "resuming" not in stderr
    assert len(journal_rows(out)) == 3
    assert os.path.getsize(out / "manifest.csv") > 0
