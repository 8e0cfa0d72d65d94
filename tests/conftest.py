from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audio.conftest import PacedDevice


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on both of anyio's backends: voicepipe is written against anyio,
    and trio's stricter rules (cancellation delivered at every checkpoint, no stray tasks)
    catch what asyncio lets slide. A test that cannot run on trio narrows itself with
    ``@pytest.mark.parametrize("anyio_backend", ["asyncio"])`` and says why."""
    return str(request.param)


@pytest.fixture
def paced_device(tmp_path: Path) -> Iterator[PacedDevice]:
    """A default ALSA device that plays in real time and records when each frame played."""
    device = PacedDevice(tmp_path)
    try:
        yield device
    finally:
        device.close()
