from __future__ import annotations

from contextlib import aclosing

import anyio
import httpx
import numpy as np
import pytest

from tests.servers.tts import Behaviour, speech_samples
from tests.tts.chunks import FAST_RETRY, collect, joined
from tests.tts.conftest import RunningServer
from voicepipe.audio.chunk import AudioChunk
from voicepipe.errors import ConfigError, ProviderError, StreamInterrupted
from voicepipe.tts.elevenlabs import ElevenLabsTTS

pytestmark = pytest.mark.anyio

TEXT = "The quick brown fox jumps over the lazy dog."
KEY = "xi-test-key-0123456789"
VOICE = "21m00Tcm4TlvDq8ikWAM"


def engine(server: RunningServer, **options: object) -> ElevenLabsTTS:
    options.setdefault("api_key", KEY)
    options.setdefault("retry", FAST_RETRY)
    return ElevenLabsTTS(VOICE, base_url=server.url, **options)  # type: ignore[arg-type]


async def test_pcm_streams_with_the_documented_request(tts_server: RunningServer) -> None:
    tts_server.app.behaviour = Behaviour(api_key=KEY, hold_after=2000, chunk_size=999)
    tts = engine(tts_server)
    assert tts.sample_rate == 22050
    async with tts, aclosing(tts.synthesize(TEXT, text_index=3)) as chunks:
        with anyio.fail_after(5):
            first = await chunks.__anext__()
        assert not tts_server.app.requests[0].completed
        tts_server.app.release.set()
        rest = await collect(chunks)
    assert np.array_equal(joined([first, *rest]), speech_samples(TEXT, 22050))
    assert {(c.sample_rate, c.text_index) for c in [first, *rest]} == {(22050, 3)}
    record = tts_server.app.requests[0]
    assert record.path == f"/v1/text-to-speech/{VOICE}/stream"
    assert record.query == {"output_format": "pcm_22050", "optimize_streaming_latency": "3"}
    assert record.headers["xi-api-key"] == KEY
    assert record.json == {"text": TEXT, "model_id": "eleven_flash_v2_5"}


async def test_rate_comes_from_the_output_format(tts_server: RunningServer) -> None:
    async with engine(
        tts_server, output_format="pcm_16000", optimize_streaming_latency=None
    ) as tts:
        assert tts.sample_rate == 16000
        chunks = await collect(tts.synthesize(TEXT))
    assert np.array_equal(joined(chunks), speech_samples(TEXT, 16000))
    assert tts_server.app.requests[0].query == {"output_format": "pcm_16000"}


async def test_mp3_is_decoded(tts_server: RunningServer) -> None:
    async with engine(tts_server, output_format="mp3_44100_128") as tts:
        chunks = await collect(tts.synthesize(TEXT))
    audio = joined(chunks)
    assert {c.sample_rate for c in chunks} == {44100}
    assert abs(len(audio) - len(speech_samples(TEXT, 44100))) < 4410


async def test_bad_key_shows_elevenlabs_message_without_the_key(
    tts_server: RunningServer,
) -> None:
    tts_server.app.behaviour = Behaviour(
        api_key="another-key",
        error_style="elevenlabs",
        error_message=f"Invalid API key: {KEY}",
    )
    async with engine(tts_server) as tts:
        with pytest.raises(ProviderError) as caught:
            await collect(tts.synthesize(TEXT))
    text = str(caught.value)
    assert caught.value.status == 401 and caught.value.provider == "elevenlabs"
    # The key was passed in, not read from ELEVENLABS_API_KEY: the hint does not name it.
    assert "Invalid API key" in text and "check the API key" in text
    assert KEY not in text


async def test_bad_key_from_the_environment_names_the_variable(
    tts_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ElevenLabs' own host (reached through a proxy that is the fake) gets the key from the
    environment; its 401 names the variable, never the key."""
    monkeypatch.setenv("ELEVENLABS_API_KEY", KEY)
    tts_server.app.behaviour = Behaviour(api_key="another-key", error_style="elevenlabs")
    async with httpx.AsyncClient(proxy=tts_server.url) as client:
        tts = ElevenLabsTTS(
            VOICE, base_url="http://api.elevenlabs.io", client=client, retry=FAST_RETRY
        )
        with pytest.raises(ProviderError) as caught:
            await collect(tts.synthesize(TEXT))
    assert tts_server.app.requests[0].headers["xi-api-key"] == KEY  # it was sent
    assert caught.value.status == 401 and "ELEVENLABS_API_KEY" in str(caught.value)
    assert KEY not in str(caught.value)


async def test_busy_server_is_retried(tts_server: RunningServer) -> None:
    tts_server.app.behaviour = Behaviour(failures=1, error_style="elevenlabs")
    async with engine(tts_server) as tts:
        chunks = await collect(tts.synthesize(TEXT))
    assert len(joined(chunks)) == len(speech_samples(TEXT, 22050))
    assert len(tts_server.app.requests) == 2


async def test_dropped_stream_is_interrupted(tts_server: RunningServer) -> None:
    tts_server.app.behaviour = Behaviour(drop_after=3000, chunk_size=500)
    received: list[AudioChunk] = []
    async with engine(tts_server) as tts:
        with pytest.raises(StreamInterrupted), anyio.fail_after(10):
            async for chunk in tts.synthesize(TEXT):
                received.append(chunk)
    assert np.array_equal(joined(received), speech_samples(TEXT, 22050)[:1500])


async def test_key_is_required_for_elevenlabs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="ELEVENLABS_API_KEY"):
        ElevenLabsTTS(VOICE)
    monkeypatch.setenv("ELEVENLABS_API_KEY", "from-env")
    assert ElevenLabsTTS(VOICE)._api_key == "from-env"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"output_format": "wav_44100"}, "output_format"),
        ({"optimize_streaming_latency": 7}, "0-4"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ElevenLabsTTS(VOICE, api_key="k", **options)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="voice id"):
        ElevenLabsTTS(" ", api_key="k")
