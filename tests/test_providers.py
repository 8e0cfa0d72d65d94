"""Specs and options to providers: keys go only where pointed, options reach the wire.

Every request goes to a real loopback server that records what it received.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from typing import Any

import anyio
import numpy as np
import pytest

from tests.servers import serve
from tests.servers.llm import FakeLLM
from tests.servers.stt import FakeTranscriber
from tests.servers.tts import TTSServer
from voicepipe.errors import ConfigError, MissingKey
from voicepipe.providers import make_llm, make_stt, make_tts
from voicepipe.tts.espeak import EspeakTTS

KEY = "sk-test-the-key-for-the-gateway-0123"
OFFICIAL = "sk-official-openai-key-never-elsewhere"

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@pytest.fixture
def url(llm_server: tuple[FakeLLM, str]) -> str:
    return llm_server[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "OLLAMA_HOST"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


async def answer(source: Any) -> str:
    with anyio.fail_after(10):
        deltas: AsyncGenerator[str, None] = source.stream([{"role": "user", "content": "Hi"}])
        async with aclosing(deltas):
            text = "".join([d async for d in deltas])
    await source.aclose()
    return text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("spec", "path"),
    [("openai:m", "/v1"), ("anthropic:m", ""), ("ollama:m", "")],
)
async def test_temperature_and_an_explicit_key_reach_every_chat_server(
    fake: FakeLLM, url: str, clean_env: pytest.MonkeyPatch, spec: str, path: str
) -> None:
    clean_env.setenv("OPENAI_API_KEY", OFFICIAL)  # must not travel to this server
    source = make_llm(spec, url=url + path, api_key=KEY, temperature=0.25)
    assert await answer(source)
    (request,) = fake.requests
    body = request.json
    temperature = (
        body["options"]["temperature"] if spec.startswith("ollama") else body["temperature"]
    )
    assert temperature == 0.25
    header = "x-api-key" if spec.startswith("anthropic") else "authorization"
    assert request.headers[header].endswith(KEY)
    assert OFFICIAL not in str(request.headers)


@pytest.mark.anyio
async def test_no_key_goes_to_another_host_unless_one_is_named(
    fake: FakeLLM, url: str, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("OPENAI_API_KEY", OFFICIAL)
    assert await answer(make_llm("openai:m", url=f"{url}/v1"))
    assert "authorization" not in fake.requests[0].headers


@pytest.mark.anyio
async def test_openai_base_url_is_honoured_with_openai_api_key(
    fake: FakeLLM, url: str, clean_env: pytest.MonkeyPatch
) -> None:
    """As the official SDK: the user paired the two variables, so the key goes there."""
    clean_env.setenv("OPENAI_BASE_URL", f"{url}/v1")
    clean_env.setenv("OPENAI_API_KEY", KEY)
    assert await answer(make_llm("openai:m"))
    assert fake.requests[0].path == "/v1/chat/completions"
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"
    # An explicit URL wins over the variable, and gets no key it was not given.
    fake.reset()
    assert await answer(make_llm("openai:m", url=f"{url}/v1/"))
    assert "authorization" not in fake.requests[0].headers


@pytest.mark.anyio
async def test_openai_base_url_without_a_key_sends_none(
    fake: FakeLLM, url: str, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("OPENAI_BASE_URL", f"{url}/v1")  # a local server that needs no key
    assert await answer(make_llm("openai:m"))
    assert "authorization" not in fake.requests[0].headers


def test_a_bad_openai_base_url_is_named(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENAI_BASE_URL", "localhost:8080")
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL 'localhost:8080' is not an http"):
        make_llm("openai:m")


def test_openai_own_host_still_needs_its_key(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingKey) as info:
        make_llm("openai:m")
    assert info.value.env_var == "OPENAI_API_KEY"


def test_local_models_take_no_key_and_temperature_is_checked() -> None:
    for spec in ("local", "text"):
        with pytest.raises(ConfigError, match="takes no API key"):
            make_llm(spec, api_key=KEY)
    for bad in (-0.1, 2.5, float("nan")):
        with pytest.raises(ConfigError, match="--temperature must be between 0 and 2"):
            make_llm("text", temperature=bad)
    assert make_llm("local", temperature=0.7).temperature == 0.7  # type: ignore[attr-defined]


@pytest.fixture
def tts_server() -> Iterator[tuple[TTSServer, str]]:
    app = TTSServer()
    with serve(app) as url:
        yield app, url


@pytest.mark.anyio
async def test_tts_options_and_key_reach_an_openai_compatible_server(
    tts_server: tuple[TTSServer, str], clean_env: pytest.MonkeyPatch
) -> None:
    app, url = tts_server
    engine = make_tts(
        "openai:gpt-4o-mini-tts",
        url=f"{url}/v1",
        api_key=KEY,
        voice="coral",
        speed=1.25,
        format="wav",
        instructions="Calm.",
    )
    with anyio.fail_after(10):
        async with aclosing(engine.synthesize("Hello there.")) as audio:
            chunks = [c async for c in audio]
    await engine.aclose()
    assert sum(len(c.samples) for c in chunks) > 0
    (request,) = app.requests
    assert request.json == {
        "model": "gpt-4o-mini-tts",
        "input": "Hello there.",
        "voice": "coral",
        "response_format": "wav",
        "speed": 1.25,
        "instructions": "Calm.",
    }
    assert request.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.anyio
async def test_elevenlabs_gets_speed_in_voice_settings_and_its_format(
    tts_server: tuple[TTSServer, str],
) -> None:
    app, url = tts_server
    engine = make_tts("elevenlabs:v1", url=url, api_key=KEY, speed=1.1, format="pcm_24000")
    with anyio.fail_after(10):
        async with aclosing(engine.synthesize("Hi.")) as audio:
            chunks = [c async for c in audio]
    await engine.aclose()
    assert chunks and chunks[0].sample_rate == 24000
    (request,) = app.requests
    assert request.json["voice_settings"] == {"speed": 1.1}
    assert request.query["output_format"] == "pcm_24000"
    assert request.headers["xi-api-key"] == KEY


@pytest.mark.parametrize(
    ("spec", "option", "takers"),
    [
        ("espeak", {"format": "mp3"}, "openai, elevenlabs do"),
        ("piper", {"instructions": "Calm."}, "openai do"),
        ("elevenlabs:v", {"instructions": "Calm."}, "openai do"),
    ],
)
def test_an_engine_without_an_option_says_which_have_it(
    spec: str, option: dict[str, str], takers: str
) -> None:
    name = spec.partition(":")[0]
    with pytest.raises(ConfigError, match=f"the {name} TTS engine has no .* option.*{takers}"):
        make_tts(spec, **option)  # type: ignore[arg-type]


def test_voice_is_given_once() -> None:
    with pytest.raises(ConfigError, match="two voices"):
        make_tts("openai:tts-1:nova", voice="alloy")
    with pytest.raises(ConfigError, match="voice is empty"):
        make_tts("openai:tts-1", voice=" ")
    with pytest.raises(ConfigError, match="takes no API key"):
        make_tts("piper", api_key=KEY)


@needs_espeak
@pytest.mark.anyio
async def test_make_tts_espeak_takes_voice_and_speed() -> None:
    normal = make_tts("espeak", voice="en-gb")
    fast = make_tts("espeak", voice="en-gb", speed=2.0)
    assert isinstance(fast, EspeakTTS) and fast.voice == "en-gb" and fast.rate_wpm == 350
    text = "This sentence is spoken at two different speeds."
    seconds = []
    for engine in (normal, fast):
        with anyio.fail_after(10):
            async with aclosing(engine.synthesize(text)) as audio:
                seconds.append(sum(c.duration for c in [c async for c in audio]))
    assert seconds[1] < seconds[0] * 0.7
    assert make_tts("espeak:en-gb").voice == "en-gb"  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_make_stt_sends_the_key_it_is_given_to_its_server() -> None:
    app = FakeTranscriber()
    with serve(app) as url:
        stt = make_stt("openai", url=f"{url}/v1", api_key=KEY)
        with anyio.fail_after(10):
            text = await stt.transcribe(np.zeros(16000, np.int16), 16000)
        await stt.aclose()
    assert text == app.text
    assert app.requests[0].headers["authorization"] == f"Bearer {KEY}"
