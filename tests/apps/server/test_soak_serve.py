"""A short soak through the HTTP server (scripts/soak.py --serve): hang-ups mid-answer and
provider faults leave nothing growing in the server (RSS, fds, threads, tasks)."""

from __future__ import annotations

import pytest

from tests import run_soak


@pytest.mark.slow
def test_short_server_soak_is_flat() -> None:
    numbers = run_soak("--serve")
    turns, completed, interrupted, llm_faults, tts_faults = numbers
    assert turns >= 20 and completed and interrupted and llm_faults and tts_faults, numbers
    assert turns == completed + interrupted + llm_faults + tts_faults
