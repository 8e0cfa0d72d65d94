"""Fixtures for LLM provider tests: one fake LLM server for the session, reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import serve
from tests.servers.llm import FakeLLM


@pytest.fixture(scope="session")
def _served() -> Iterator[tuple[FakeLLM, str]]:
    app = FakeLLM()
    with serve(app) as url:
        yield app, url


@pytest.fixture
def fake(_served: tuple[FakeLLM, str]) -> FakeLLM:
    """The fake server, with default behaviour and no recorded requests."""
    app, _ = _served
    app.reset()
    return app


@pytest.fixture
def base_url(_served: tuple[FakeLLM, str]) -> str:
    return _served[1]
