from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audio.conftest import PacedDevice
from tests.servers import serve
from tests.servers.llm import FakeLLM


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


@pytest.fixture(scope="session")
def llm_server() -> Iterator[tuple[FakeLLM, str]]:
    """One fake OpenAI-compatible LLM server (a real uvicorn on loopback) for the session."""
    app = FakeLLM()
    with serve(app) as url:
        yield app, url


@pytest.fixture
def fake(llm_server: tuple[FakeLLM, str]) -> FakeLLM:
    """The fake LLM server, with default behaviour and no recorded requests."""
    app, _ = llm_server
    app.reset()
    return app
