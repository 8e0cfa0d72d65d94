"""Batch synthesis on a local Ray cluster: two workers on two cores, one killed mid-batch."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests import ROOT_DIR
from voicepipe.apps.raybatch import probe_out_dir
from voicepipe.apps.resume import JOURNAL, check_output
from voicepipe.errors import ConfigError

BATCH = ["synth", "--llm", "text", "--tts", "espeak"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voicepipe", *args],
        capture_output=True,
        text=True,
        cwd=ROOT_DIR,
        timeout=180,
    )


def journal_rows(out: Path) -> list[dict[str, object]]:
    if not (out / JOURNAL).exists():
        return []
    return [json.loads(line) for line in (out / JOURNAL).read_bytes().splitlines() if line]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Ray's raylet and its workers hang under the driver)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        found += children
        frontier += children
    return found


def worker_pids(driver: int) -> list[int]:
    pids = []
    for pid in descendants(driver):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"ray::SynthWorker"):
            pids.append(pid)
    return pids


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def test_an_unreachable_cluster_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("Hello.\n")
    address = f"127.0.0.1:{closed_port()}"
    result = run(*BATCH, "--prompts", str(tmp_path / "p.txt"), "--out-dir", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr  # the same batch without Ray works
    result = run(
        *BATCH, "--prompts", str(tmp_path / "p.txt"), "--out-dir", str(tmp_path / "r"),
        "--ray", address,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot reach the Ray cluster at {address}" in lines[0], lines
    result = run(*BATCH, "--prompts", str(tmp_path / "p.txt"), "--out-dir", "o", "--ray", "x")
    assert result.returncode == 2 and "bad Ray address 'x'" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hi", "-o", "a.wav", "--ray"], "--ray goes with --prompts"),
        (["--prompts", "p.txt", "--out-dir", "o", "--workers", "3"], "--workers goes with --ray"),
        (["--prompts", "p.txt", "--out-dir", "o", "--ray", "--workers", "0"], "at least 1"),
        (["--prompts", "p.txt", "--out-dir", "o", "--ray", "--retries", "-1"], "not be negative"),
    ],
)
def test_ray_usage_errors(args: list[str], message: str) -> None:
    result = run(*BATCH, *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_a_worker_that_cannot_write_the_out_dir_says_so(tmp_path: Path) -> None:
    probe_out_dir(tmp_path)  # writable: no error, and no probe file left behind
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match=r"cannot see the out dir .* shared filesystem"):
        probe_out_dir(tmp_path / "not-on-this-node")
    with pytest.raises(ConfigError, match="cannot write to the out dir /proc"):
        probe_out_dir("/proc")  # even root cannot create files there


@pytest.mark.slow
def test_a_worker_killed_mid_batch_still_leaves_every_prompt_written_once(
    tmp_path: Path,
) -> None:
    prompts = [
        f"Prompt {n}: the quick brown fox jumps over the lazy dog, twice." for n in range(16)
    ]
    (tmp_path / "p.txt").write_text("\n".join(prompts) + "\n")
    out = tmp_path / "out"
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voicepipe",
            *BATCH,
            "--prompts",
            str(tmp_path / "p.txt"),
            "--out-dir",
            str(out),
            "--ray",
            "--workers",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT_DIR,
    )
    killed = None
    try:
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline:
            assert driver.poll() is None, driver.communicate()
            pids = worker_pids(driver.pid)
            if len(pids) == 2 and len(journal_rows(out)) >= 2:
                killed = pids[0]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.02)
        assert killed is not None, "the workers never got going"
        rows_at_kill = len(journal_rows(out))
        _, stderr = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert driver.returncode == 0, stderr
    assert rows_at_kill < len(prompts), "the kill came after the batch ended"
    assert "died; starting a new one" in stderr
    rows = journal_rows(out)
    assert Counter(r["prompt"] for r in rows) == Counter(prompts)  # each once, none failed
    assert all(r["ok"] for r in rows)
    doc = json.loads((out / "manifest.json").read_text())
    assert [i["prompt"] for i in doc["items"]] == prompts
    assert doc["summary"]["workers"] == 2 and doc["summary"]["ray"] == "local"
    for item in doc["items"]:
        assert check_output(out / item["file"], item["duration_s"]) is None
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{n:03d}.wav" for n in range(1, 17)] + ["manifest.csv", "manifest.json", JOURNAL]
    )
    assert not any(p in worker_pids(driver.pid) for p in [killed])


@pytest.mark.slow
def test_workers_that_cannot_load_their_models_stop_the_batch_with_the_reason(
    tmp_path: Path,
) -> None:
    (tmp_path / "p.txt").write_text("Hello.\n")
    missing = tmp_path / "no-such-voice.onnx"
    result = run(
        "synth", "--llm", "text", "--tts", f"piper:{missing}", "--prompts", str(tmp_path / "p.txt"),
        "--out-dir", str(tmp_path / "o"), "--ray", "--workers", "1",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert str(missing) in result.stderr.strip().splitlines()[-1]
    assert journal_rows(tmp_path / "o") == []
