"""Credentials never reach a message: URL user info, and what an upstream echoes back."""

from __future__ import annotations

import pytest

from tests.servers.llm import Behaviour, FakeLLM
from tests.tts.chunks import FAST_RETRY
from voicepipe.errors import ProviderError
from voicepipe.llm.openai import OpenAIChat
from voicepipe.transport.wording import public_url, scrub

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("at http://admin:hunter2@10.0.0.5:8080/v1 (x)", "at http://***@10.0.0.5:8080/v1 (x)"),
        ("https://token@host/x", "https://***@host/x"),
        ("you sent Authorization: Basic YWRtaW46aHVudGVyMg==", "you sent Authorization: ***"),
        ('{"authorization": "Bearer sk-abc123"}', '{"authorization": "***"}'),
        ("authorization: bearer abcdefghijklmnop", "authorization: ***"),
        ("echo Bearer sk-live-1234 done", "echo Bearer *** done"),
        (
            "x-api-key: k-999999, cookie: s=1; api_key=abc",
            "x-api-key: ***, cookie: ***; api_key=***",
        ),
        # Plain words stay as they were.
        ("Bearer tokens are missing", "Bearer tokens are missing"),
        ("the Authorization header is missing", "the Authorization header is missing"),
        ("max_tokens: 100, a token budget", "max_tokens: 100, a token budget"),
        ("see https://example.com/docs@v2", "see https://example.com/docs@v2"),
    ],
)
def test_scrub_masks_credentials_only(text: str, shown: str) -> None:
    assert scrub(text) == shown


def test_public_url_drops_the_user_info_query_and_fragment() -> None:
    assert public_url("http://admin:hunter2@h:9/v1?key=abc#x") == "http://h:9/v1"
    assert public_url("https://api.openai.com/v1") == "https://api.openai.com/v1"
    assert public_url("not a url") == "not a url"


async def test_a_url_with_credentials_is_never_shown(fake: FakeLLM, base_url: str) -> None:
    """Before: 'could not reach openai at http://admin:hunter2@...', and the upstream's echo
    of the Basic credentials it was sent, word for word."""
    host = base_url.removeprefix("http://")
    fake.behaviour = Behaviour(
        error_status=401, error_message="you sent Authorization: Basic YWRtaW46aHVudGVyMg=="
    )
    echoed = OpenAIChat("x", base_url=f"http://admin:hunter2@{host}/v1", retry=FAST_RETRY)
    refused = OpenAIChat("x", base_url="http://admin:hunter2@127.0.0.1:9/v1", retry=FAST_RETRY)
    messages = []
    for llm in (echoed, refused):
        async with llm:
            with pytest.raises(ProviderError) as failed:
                async for _ in llm.stream([{"role": "user", "content": "Hi."}]):
                    pass
        messages.append(f"{failed.value}\n{failed.value!r}")
    assert "HTTP 401" in messages[0] and "Authorization: ***" in messages[0]
    assert "could not reach openai at http://***@127.0.0.1:9" not in messages[1]
    assert "could not reach openai at http://127.0.0.1:9/v1" in messages[1]
    for text in messages:
        assert "hunter2" not in text and "YWRtaW46" not in text and "admin" not in text, text


def test_a_providers_repr_hides_the_url_credentials() -> None:
    shown = repr(OpenAIChat("x", base_url="http://admin:hunter2@127.0.0.1:9/v1"))
    assert shown == "OpenAIChat(model='x', base_url='http://127.0.0.1:9/v1')"
