"""The HTTP provider base: one key rule, a repr without the key, and every request (the
transcriber's included) sent with retries and the first-byte timeout, over real loopback HTTP."""

from __future__ import annotations

from typing import Any

import anyio
import numpy as np
import pytest

from tests.servers import serve
from tests.servers.stt import FakeTranscriber
from voicepipe.errors import ProviderError
from voicepipe.llm.anthropic import AnthropicChat
from voicepipe.llm.ollama import OllamaChat
from voicepipe.llm.openai import OpenAIChat
from voicepipe.transport.keys import OPENAI_KEY, VendorKey
from voicepipe.transport.provider import HTTPProvider
from voicepipe.transport.settings import RetryPolicy, Timeouts
from voicepipe.tts.elevenlabs import ElevenLabsTTS
from voicepipe.tts.openai import OpenAITTS
from voicepipe.voice.stt import OpenAITranscriber

SECRET = "sk-secret-5f0c1d"
FAST = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02)
RATE = 16000
SPEECH = np.zeros(RATE // 10, dtype=np.int16)


@pytest.mark.parametrize(
    ("key", "base_url", "official"),
    [
        (OPENAI_KEY, "https://api.openai.com/v1", True),
        (OPENAI_KEY, "https://API.OpenAI.com:443/v1", True),
        (OPENAI_KEY, "https://eu.api.openai.com/v1", True),
        (OPENAI_KEY, "https://api.openai.com.example.org/v1", False),
        (OPENAI_KEY, "https://notapi.openai.com/v1", False),
        (OPENAI_KEY, "http://127.0.0.1:8000/v1", False),
        (OPENAI_KEY, "localhost:8000/v1", False),
        (OPENAI_KEY, "http://[::1/v1", False),
        (VendorKey("ELEVENLABS_API_KEY", "elevenlabs.io"), "https://api.elevenlabs.io", True),
    ],
)
def test_only_the_vendors_own_hosts_are_official(
    key: VendorKey, base_url: str, official: bool
) -> None:
    assert key.is_official(base_url) is official


def test_every_provider_shows_its_settings_but_never_its_key() -> None:
    providers: list[HTTPProvider] = [
        OpenAIChat("m", api_key=SECRET),
        AnthropicChat("m", api_key=SECRET),
        OllamaChat("m", base_url="http://127.0.0.1:11434"),
        OpenAITTS(api_key=SECRET),
        ElevenLabsTTS("voice", api_key=SECRET),
        OpenAITranscriber(api_key=SECRET),
    ]
    for provider in providers:
        text = repr(provider)
        assert text.startswith(type(provider).__name__ + "(")
        assert SECRET not in text
    assert repr(providers[0]) == "OpenAIChat(model='m', base_url='https://api.openai.com/v1')"


def test_the_transcribers_timeout_is_its_first_byte_and_idle_limit() -> None:
    stt = OpenAITranscriber(base_url="http://127.0.0.1:1/v1", timeout=7.0)
    assert (stt.timeouts.first_byte, stt.timeouts.idle) == (7.0, 7.0)
    phases = Timeouts(connect=1.0, first_byte=2.0, idle=3.0)
    assert OpenAITranscriber(base_url="http://127.0.0.1:1/v1", timeouts=phases).timeouts == phases


async def transcribe(app: FakeTranscriber, **options: Any) -> str | ProviderError:
    """What a transcriber with ``options`` makes of a short utterance, served by ``app``."""
    with serve(app) as url:
        async with OpenAITranscriber(base_url=f"{url}/v1", **options) as stt:
            try:
                with anyio.fail_after(10):
                    return await stt.transcribe(SPEECH, RATE)
            except ProviderError as exc:
                return exc


@pytest.mark.anyio
async def test_transcriber_retries_a_busy_server() -> None:
    app = FakeTranscriber(busy=2)
    assert await transcribe(app, api_key=SECRET, retry=FAST) == app.text
    assert len(app.requests) == 3
    assert all(upload.sample_rate == RATE for upload in app.requests)  # the file, each time


@pytest.mark.anyio
async def test_transcriber_gives_up_after_the_retries() -> None:
    app = FakeTranscriber(busy=10)
    error = await transcribe(app, api_key=SECRET, retry=FAST)
    assert isinstance(error, ProviderError) and error.status == 503 and error.retryable
    assert "openai returned HTTP 503 after 3 attempts: Server busy, try again." in str(error)
    assert len(app.requests) == 3


@pytest.mark.anyio
async def test_transcriber_honours_the_first_byte_timeout() -> None:
    app = FakeTranscriber(answer_delay=1.0)
    retry = RetryPolicy(max_retries=1, initial_delay=0.01)
    error = await transcribe(app, timeout=0.2, retry=retry)
    assert isinstance(error, ProviderError) and error.retryable
    assert "openai sent no response within 0.2 s" in str(error) and "2 attempts" in str(error)
    assert len(app.requests) == 2


@pytest.mark.anyio
async def test_transcriber_without_a_text_field_says_where_it_asked() -> None:
    error = await transcribe(FakeTranscriber(text=None), retry=FAST)  # type: ignore[arg-type]
    assert isinstance(error, ProviderError) and "/v1/audio/transcriptions has no text" in str(error)
