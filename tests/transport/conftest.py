"""The transport is tested against the fake LLM server: the same fixtures as tests/llm."""

from tests.llm.conftest import _served, base_url, fake

__all__ = ["_served", "base_url", "fake"]
