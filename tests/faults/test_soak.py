"""A short soak (scripts/soak.py): turns, interruptions and faults leave nothing growing."""

from __future__ import annotations

import pytest

from tests import run_soak


@pytest.mark.slow
def test_short_soak_is_flat() -> None:
    numbers = run_soak()
    turns, _completed, interrupted, llm_faults, tts_faults = numbers
    assert turns >= 20 and interrupted and llm_faults and tts_faults, numbers
