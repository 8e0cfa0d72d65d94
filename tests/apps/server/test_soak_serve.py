"""A short soak through the HTTP server (scripts/soak.py --serve): hang-ups mid-answer and
provider faults leave nothing growing in the server (RSS, fds, threads, tasks)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import ROOT_DIR


@pytest.mark.slow
def test_short_server_soak_is_flat() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT_DIR / "scripts" / "soak.py"), "--seconds", "4", "--serve"],
        capture_output=True,
        text=True,
        cwd=ROOT_DIR,
        timeout=60,
    )
    print(result.stdout)  # the figures, with -s
    assert result.returncode == 0, result.stdout + result.stderr
    # "97 turns: 53 completed, 20 interrupted, 14 LLM faults, 10 TTS faults"
    numbers = [int(word) for word in result.stdout.splitlines()[0].split() if word.isdigit()]
    turns, completed, interrupted, llm_faults, tts_faults = numbers
    assert turns >= 20 and completed and interrupted and llm_faults and tts_faults, result.stdout
    assert turns == completed + interrupted + llm_faults + tts_faults
