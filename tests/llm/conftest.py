"""Fixtures for LLM provider tests: the session's fake LLM server (tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.servers.llm import FakeLLM


@pytest.fixture
def base_url(llm_server: tuple[FakeLLM, str]) -> str:
    return llm_server[1]
