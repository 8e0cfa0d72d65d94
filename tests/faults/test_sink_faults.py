"""Sink faults through the real CLI: a full disk, paths that cannot be written.

A full disk is a per-process file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored so writes
fail with EFBIG as on a full disk). The harness checks one line, no traceback, and that any
WAV left is valid; here we also check how much of it was kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import Cli, file_size_limit

LONG = " ".join(f"This is sentence number {i} of a long answer." for i in range(20))
LIMIT = 50_001  # bytes: about half a second at 24 kHz, then the disk is "full"


def test_disk_full_keeps_a_valid_wav_of_what_fit(cli: Cli) -> None:
    outcome = cli.synth(llm="text", prompt=LONG, preexec_fn=file_size_limit(LIMIT))
    assert outcome.returncode == 1
    assert outcome.line == f"voicepipe: error: writing {outcome.output} failed: File too large"
    rate, samples = outcome.wav()
    assert rate == 24000
    assert 0 < 44 + 2 * len(samples) <= LIMIT  # everything the header claims is on disk


@pytest.mark.parametrize("suffix", [".mp3", ".flac"])
def test_disk_full_while_encoding_leaves_no_file(cli: Cli, suffix: str) -> None:
    # Encoded as it comes (no temporary WAV): an MP3 at its default rate would fit the disk.
    bitrate = ["--bitrate", "160k"] if suffix == ".mp3" else []
    outcome = cli.synth(
        *bitrate, llm="text", prompt=LONG, output=f"answer{suffix}",
        preexec_fn=file_size_limit(LIMIT),
    )  # fmt: skip
    assert outcome.returncode == 1
    assert outcome.line.endswith(f"answer{suffix} failed: File too large"), outcome.line
    assert outcome.files == []  # neither a broken file nor the temporary WAV


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("missing/answer.wav", "folder {parent} does not exist"),
        ("taken.wav", "it is a folder"),
        ("/proc/voicepipe-answer.wav", "cannot write /proc/voicepipe-answer.wav"),
    ],
    ids=["missing-folder", "a-folder", "read-only-filesystem"],
)
def test_unwritable_path_is_one_line_and_no_file(cli: Cli, target: str, says: str) -> None:
    path = Path(target) if target.startswith("/") else cli.folder / target
    if target == "taken.wav":
        path.mkdir()
    outcome = cli.run(
        "synth", "Hello there.", "-o", str(path), "--llm", "text", "--tts", "openai:tts-1",
        "--tts-url", f"{cli.tts_url}/v1",
    )  # fmt: skip
    assert outcome.returncode == 1
    assert says.format(parent=path.parent) in outcome.line, outcome.line
    assert outcome.files == (["taken.wav"] if target == "taken.wav" else [])
