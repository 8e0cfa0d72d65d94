"""Batch synthesis: one file per prompt, bounded concurrency, a manifest, failures isolated."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import wave
from collections.abc import AsyncGenerator
from pathlib import Path

import anyio
import numpy as np
import pytest

from tests import ROOT_DIR
from tests.engines import ToneTTS, tone_for
from voicepipe.apps.batch import BatchResult, plan_batch, slug, synthesize_batch, write_manifest
from voicepipe.apps.prompts import read_prompts
from voicepipe.audio.chunk import AudioChunk
from voicepipe.errors import ConfigError, ProviderError
from voicepipe.llm.text import TextSource
from voicepipe.pipeline import Pipeline

ROOT = ROOT_DIR


class PickyTTS(ToneTTS):
    """Fails on any text with the word FAIL; counts how many syntheses overlap."""

    def __init__(self) -> None:
        super().__init__(delay=0.01)  # long enough that two syntheses surely overlap
        self.active = 0
        self.most_active = 0

    async def synthesize(self, text: str, text_index: int = 0) -> AsyncGenerator[AudioChunk, None]:
        if "FAIL" in text:
            raise ProviderError("cannot say that", provider="tone")
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            async for chunk in super().synthesize(text, text_index):
                yield chunk
        finally:
            self.active -= 1


def wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")


def test_read_prompts_skips_blanks_and_comments(tmp_path: Path) -> None:
    f = tmp_path / "p.txt"
    f.write_text("# my prompts\nFirst one.\n\n   Second one.  \n#skip\n")
    assert read_prompts(f) == ["First one.", "Second one."]
    f.write_text("\n# only a comment\n")
    with pytest.raises(ConfigError, match="has no prompts"):
        read_prompts(f)
    with pytest.raises(ConfigError, match="not found"):
        read_prompts(tmp_path / "missing.txt")


def test_file_names() -> None:
    items = plan_batch(["Why is the sky blue?", "Ça va? 🙂", "!!!"], "out", "mp3", "slug")
    assert [i.path.name for i in items] == [
        "001-why-is-the-sky-blue.mp3",
        "002-ca-va.mp3",
        "003-prompt.mp3",
    ]
    assert plan_batch(["a"] * 1200, "o")[-1].path.name == "1200.wav"
    assert len(slug("word " * 50)) <= 40
    with pytest.raises(ConfigError, match="unknown format 'aiff'"):
        plan_batch(["a"], "o", "aiff")


@pytest.mark.anyio
async def test_a_failing_prompt_is_recorded_and_the_others_are_written(tmp_path: Path) -> None:
    prompts = ["One two three.", "Please FAIL now.", "Four five six seven.", "Eight."]
    items = plan_batch(prompts, tmp_path)
    tts = PickyTTS()
    done: list[int] = []
    with anyio.fail_after(20):
        async with Pipeline(TextSource(0), tts, chunking="sentence") as pipe:
            results = await synthesize_batch(
                pipe,
                items,
                concurrency=2,
                smooth_joins=False,
                on_done=lambda r: done.append(r.number),
            )
    assert sorted(done) == [1, 2, 3, 4] and [r.number for r in results] == [1, 2, 3, 4]
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[1].error == "cannot say that" and not (tmp_path / "002.wav").exists()
    for r, prompt in zip(results, prompts, strict=True):
        if r.ok:
            expected = tone_for(prompt, 16000, tts.seconds_per_word)
            np.testing.assert_array_equal(wav(tmp_path / r.file), expected)
            assert r.text == prompt and r.duration_s == pytest.approx(len(expected) / 16000)
            assert r.timings_ms["ttfa_ms"] is not None
            assert r.timings_ms["total_ms"] >= r.timings_ms["ttfa_ms"]
    assert tts.most_active == 2  # two prompts were in flight at once, never more


@pytest.mark.anyio
async def test_concurrency_one_runs_one_at_a_time(tmp_path: Path) -> None:
    tts = PickyTTS()
    with anyio.fail_after(20):
        async with Pipeline(TextSource(0), tts) as pipe:
            results = await synthesize_batch(
                pipe, plan_batch(["A b c.", "D e f.", "G h."], tmp_path), concurrency=1
            )
    assert all(r.ok for r in results) and tts.most_active == 1


def test_manifest_json_and_csv(tmp_path: Path) -> None:
    results = [
        BatchResult(
            1,
            "Hi, there.",
            "001.wav",
            ok=True,
            text="Hi, there.",
            duration_s=1.5,
            timings_ms={"ttfa_ms": 120.0, "total_ms": 900.0},
        ),
        BatchResult(
            2, 'Say "x"', "002.wav", error="boom", timings_ms={"ttfa_ms": None, "total_ms": None}
        ),
    ]
    json_path, csv_path = write_manifest(results, tmp_path, extra={"wall_s": 2.0})
    doc = json.loads(json_path.read_text())
    assert doc["summary"] == {"items": 2, "ok": 1, "failed": 1, "audio_s": 1.5, "wall_s": 2.0}
    assert doc["items"][1]["error"] == "boom" and doc["items"][0]["timings_ms"]["ttfa_ms"] == 120
    rows = list(csv.DictReader(csv_path.open()))
    assert rows[0]["prompt"] == "Hi, there." and rows[0]["ttfa_ms"] == "120.0"
    assert rows[1]["prompt"] == 'Say "x"' and rows[1]["ok"] == "False"


def voicepipe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voicepipe", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env=env,
    )


def test_cli_batch_writes_files_a_table_and_a_manifest(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(
        "Why is the sky blue?\n# not this one\n\nName three rivers.\nCount to three.\n"
    )
    out = tmp_path / "out"
    result = voicepipe(
        "synth",
        "--prompts",
        str(prompts),
        "--out-dir",
        str(out),
        "--format",
        "mp3",
        "--bitrate",
        "48k",
        "--names",
        "slug",
        "--concurrency",
        "2",
        "--llm",
        "text",
        "--tts",
        "espeak",
    )
    assert result.returncode == 0, result.stderr
    names = ["001-why-is-the-sky-blue.mp3", "002-name-three-rivers.mp3", "003-count-to-three.mp3"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*names, "manifest.csv", "manifest.json", "manifest.jsonl"]
    )
    assert all(n in result.stdout for n in names)  # the summary table
    assert "wrote 3 of 3 files" in result.stderr
    doc = json.loads((out / "manifest.json").read_text())
    assert [i["file"] for i in doc["items"]] == names
    assert all(i["ok"] and i["duration_s"] > 0.5 for i in doc["items"])
    assert doc["items"][1]["text"] == "Name three rivers."
    assert doc["summary"]["failed"] == 0 and doc["summary"]["concurrency"] == 2


def test_cli_batch_exit_code_and_manifest_when_prompts_fail(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Hello.\nGoodbye.\n")
    env = {**os.environ, "OPENAI_API_KEY": "test-key"}
    result = voicepipe(
        "synth",
        "--prompts",
        str(prompts),
        "--out-dir",
        str(tmp_path / "o"),
        "--llm",
        "text",
        "--tts",
        "openai:tts-1",
        "--tts-url",
        "http://127.0.0.1:9/v1",
        env=env,
    )
    assert result.returncode == 1
    doc = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert doc["summary"]["failed"] == 2
    assert all(i["error"] for i in doc["items"])
    assert "wrote 0 of 2 files" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["synth", "hi"], "-o FILE"),
        (["synth"], "the prompt is empty"),
        (["synth", "hi", "--prompts", "p.txt", "--out-dir", "o"], "not both"),
        (["synth", "--prompts", "p.txt"], "needs --out-dir"),
        (["synth", "--prompts", "p.txt", "--out-dir", "o", "-o", "a.wav"], "instead of -o"),
        (["synth", "hi", "-o", "a.wav", "--out-dir", "o"], "--out-dir goes with --prompts"),
        (["synth", "--prompts", "p.txt", "--out-dir", "o", "--concurrency", "0"], "at least 1"),
        (["synth", "--prompts", "p.txt", "--out-dir", "o", "--bitrate", "64k"], "lossy"),
        (["synth", "--prompts", "nope.txt", "--out-dir", "o"], "not found"),
    ],
)
def test_cli_batch_usage_errors(args: list[str], message: str) -> None:
    result = voicepipe(*args, "--llm", "text", "--tts", "espeak")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
