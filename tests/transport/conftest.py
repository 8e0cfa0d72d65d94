"""The transport is tested against the fake LLM server: the same fixtures as tests/llm."""

from tests.llm.conftest import base_url

__all__ = ["base_url"]
