from __future__ import annotations

from contextlib import aclosing

import anyio
import numpy as np
import numpy.typing as npt
import pytest

from tests.servers.tts import Behaviour, speech_samples
from tests.tts.chunks import FAST_RETRY, collect, joined
from tests.tts.conftest import RunningServer
from voicepipe.audio.chunk import AudioChunk
from voicepipe.errors import AudioError, ConfigError, ProviderError, StreamInterrupted
from voicepipe.transport.settings import RetryPolicy
from voicepipe.tts.openai import OpenAITTS

pytestmark = pytest.mark.anyio

TEXT = "Hello there, this is a test of streaming speech."  # 48 chars: 0.48 s


def engine(server: RunningServer, **options: object) -> OpenAITTS:
    options.setdefault("retry", FAST_RETRY)
    return OpenAITTS(base_url=f"{server.url}/v1", **options)  # type: ignore[arg-type]


async def test_pcm_is_yielded_while_the_server_is_still_sending(
    tts_server: RunningServer,
) -> None:
    tts_server.app.behaviour = Behaviour(hold_after=4800, chunk_size=1200)
    tts = engine(tts_server, voice="af_heart")
    async with tts, aclosing(tts.synthesize(TEXT, text_index=7)) as chunks:
        with anyio.fail_after(5):
            first = await chunks.__anext__()
        record = tts_server.app.requests[0]
        assert not record.completed and record.bytes_sent <= 4800
        tts_server.app.release.set()
        rest = await collect(chunks)
    audio = joined([first, *rest])
    assert np.array_equal(audio, speech_samples(TEXT, 24000))
    assert {c.sample_rate for c in [first, *rest]} == {24000}
    assert {c.text_index for c in [first, *rest]} == {7}
    assert record.completed
    assert record.json == {
        "model": "tts-1",
        "input": TEXT,
        "voice": "af_heart",
        "response_format": "pcm",
    }
    assert "authorization" not in record.headers


@pytest.mark.parametrize("chunk_size", [1, 3])
async def test_pcm_split_mid_sample_is_reassembled(
    tts_server: RunningServer, chunk_size: int
) -> None:
    tts_server.app.behaviour = Behaviour(chunk_size=chunk_size)
    async with engine(tts_server) as tts:
        chunks = await collect(tts.synthesize("Short one."))
    assert np.array_equal(joined(chunks), speech_samples("Short one.", 24000))
    # Tiny network chunks are merged: no chunk shorter than 10 ms except the last.
    assert all(len(c.samples) >= 240 for c in chunks[:-1])


async def test_pcm_rate_from_content_type(tts_server: RunningServer) -> None:
    tts_server.app.behaviour = Behaviour(openai_rate=22050, content_type="audio/pcm;rate=22050")
    async with engine(tts_server) as tts:
        chunks = await collect(tts.synthesize(TEXT))
    assert {c.sample_rate for c in chunks} == {22050}
    assert tts.sample_rate == 24000  # the response's rate is the response's, not the engine's
    assert np.array_equal(joined(chunks), speech_samples(TEXT, 22050))


@pytest.mark.parametrize("channels", [1, 2])
async def test_wav_of_unknown_length(tts_server: RunningServer, channels: int) -> None:
    tts_server.app.behaviour = Behaviour(chunk_size=7, openai_rate=22050, wav_channels=channels)
    async with engine(tts_server, response_format="wav") as tts:
        chunks = await collect(tts.synthesize(TEXT))
    assert tts.sample_rate == 24000
    assert {c.sample_rate for c in chunks} == {22050}
    assert np.array_equal(joined(chunks), speech_samples(TEXT, 22050))


@pytest.mark.parametrize("response_format", ["pcm", "wav", "flac"])
async def test_a_request_in_flight_changes_nothing_other_requests_read(
    tts_server: RunningServer, response_format: str
) -> None:
    """One engine serves concurrent sessions: a response's rate must stay with its chunks."""
    tts_server.app.behaviour = Behaviour(
        openai_rate=22050, content_type="audio/pcm;rate=22050" if response_format == "pcm" else None
    )
    async with engine(tts_server, response_format=response_format) as tts:
        first = tts.synthesize(TEXT)
        async with aclosing(first):
            with anyio.fail_after(10):
                head = await first.__anext__()
            assert head.sample_rate == 22050
            assert tts.sample_rate == 24000  # what another session reads meanwhile
            rest = await collect(first)
    assert {c.sample_rate for c in [head, *rest]} == {22050} and tts.sample_rate == 24000


def peak_frequency(samples: npt.NDArray[np.int16], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / len(samples))


async def test_mp3_is_decoded(tts_server: RunningServer) -> None:
    async with engine(tts_server, response_format="mp3") as tts:
        chunks = await collect(tts.synthesize(TEXT))
    audio = joined(chunks)
    assert {c.sample_rate for c in chunks} == {24000}
    assert abs(len(audio) - len(speech_samples(TEXT, 24000))) < 2400  # encoder padding
    assert peak_frequency(audio, 24000) == pytest.approx(440, abs=5)
    assert tts_server.app.requests[0].json["response_format"] == "mp3"


async def test_flac_is_decoded_exactly(tts_server: RunningServer) -> None:
    async with engine(tts_server, response_format="flac") as tts:
        chunks = await collect(tts.synthesize(TEXT))
    assert np.array_equal(joined(chunks), speech_samples(TEXT, 24000))


async def test_missing_ffmpeg_is_reported_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(AudioError, match="install it"):
        OpenAITTS(base_url="http://127.0.0.1:1/v1", response_format="mp3")
    OpenAITTS(base_url="http://127.0.0.1:1/v1", response_format="pcm")  # pcm needs no ffmpeg


async def test_429_is_retried_then_succeeds(tts_server: RunningServer) -> None:
    tts_server.app.behaviour = Behaviour(failures=2, retry_after="0")
    async with engine(tts_server) as tts:
        chunks = await collect(tts.synthesize(TEXT))
    assert np.array_equal(joined(chunks), speech_samples(TEXT, 24000))
    assert len(tts_server.app.requests) == 3


async def test_429_gives_up_with_the_providers_message(tts_server: RunningServer) -> None:
    tts_server.app.behaviour = Behaviour(failures=5, error_message="Rate limit reached for tts-1")
    async with engine(tts_server) as tts:
        with pytest.raises(ProviderError) as caught:
            await collect(tts.synthesize(TEXT))
    assert caught.value.status == 429 and caught.value.provider == "openai"
    assert "Rate limit reached for tts-1" in str(caught.value)
    assert len(tts_server.app.requests) == 3


async def test_401_names_the_problem_and_hides_the_key(tts_server: RunningServer) -> None:
    secret = "sk-test-abcdef0123456789"
    tts_server.app.behaviour = Behaviour(
        api_key="the-right-key", error_message=f"Incorrect API key provided: {secret}."
    )
    async with engine(tts_server, api_key=secret) as tts:
        with pytest.raises(ProviderError) as caught:
            await collect(tts.synthesize(TEXT))
    error = caught.value
    assert error.status == 401 and not error.retryable
    assert "Incorrect API key provided" in str(error) and "check the API key" in str(error)
    assert tts_server.app.requests[0].headers["authorization"] == f"Bearer {secret}"
    seen: BaseException | None = error
    while seen is not None:
        assert secret not in f"{seen}{seen!r}"
        seen = seen.__cause__ or seen.__context__


@pytest.mark.parametrize(("status", "style"), [(400, "kokoro"), (500, "openai")])
async def test_error_bodies_are_parsed(tts_server: RunningServer, status: int, style: str) -> None:
    tts_server.app.behaviour = Behaviour(
        error_status=status, error_style=style, error_message="Voice 'xx' not found"
    )
    async with engine(tts_server, retry=RetryPolicy(max_retries=0)) as tts:
        with pytest.raises(ProviderError, match="Voice 'xx' not found") as caught:
            await collect(tts.synthesize(TEXT))
    assert caught.value.status == status


async def test_json_instead_of_audio_is_an_error(tts_server: RunningServer) -> None:
    tts_server.app.behaviour = Behaviour(content_type="application/json")
    async with engine(tts_server) as tts:
        with pytest.raises(ProviderError, match="instead of audio"):
            await collect(tts.synthesize(TEXT))


async def test_dropped_connection_keeps_the_audio_already_yielded(
    tts_server: RunningServer,
) -> None:
    tts_server.app.behaviour = Behaviour(drop_after=4801, chunk_size=1000)
    received: list[AudioChunk] = []
    async with engine(tts_server) as tts:
        with pytest.raises(StreamInterrupted, match="dropped mid-stream"):
            with anyio.fail_after(10):
                async for chunk in tts.synthesize(TEXT):
                    received.append(chunk)
    assert np.array_equal(joined(received), speech_samples(TEXT, 24000)[:2400])


async def test_closing_the_stream_closes_the_connection(tts_server: RunningServer) -> None:
    tts_server.app.behaviour = Behaviour(hold_after=4800)
    async with engine(tts_server) as tts:
        async with aclosing(tts.synthesize(TEXT)) as chunks:
            with anyio.fail_after(5):
                await chunks.__anext__()
        record = tts_server.app.requests[0]
        assert await anyio.to_thread.run_sync(record.disconnected.wait, 5)
        assert not record.completed


async def test_cancelling_the_consumer_closes_the_connection(tts_server: RunningServer) -> None:
    tts_server.app.behaviour = Behaviour(first_byte_delay=0.2, hold_after=0)
    async with engine(tts_server) as tts:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:

                async def consume() -> None:
                    async with aclosing(tts.synthesize(TEXT)) as chunks:
                        await chunks.__anext__()

                tg.start_soon(consume)
                # Cancel once the request has reached the server, however busy the machine is.
                assert await anyio.to_thread.run_sync(tts_server.app.received.wait, 5)
                tg.cancel_scope.cancel()
        record = tts_server.app.requests[0]
        assert await anyio.to_thread.run_sync(record.disconnected.wait, 5)
        assert not record.completed


async def test_empty_text_sends_no_request(tts_server: RunningServer) -> None:
    async with engine(tts_server) as tts:
        assert await collect(tts.synthesize("  \n")) == []
    assert tts_server.app.requests == []


async def test_openai_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAITTS()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    assert OpenAITTS()._api_key == "sk-from-env"


async def test_openai_key_is_not_sent_to_other_servers(
    tts_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-stay-home")
    async with engine(tts_server) as tts:
        await collect(tts.synthesize("Hi."))
    assert "authorization" not in tts_server.app.requests[0].headers


async def test_options_reach_the_payload(tts_server: RunningServer) -> None:
    async with engine(
        tts_server, model="gpt-4o-mini-tts", voice="coral", speed=1.5, instructions="Cheerful."
    ) as tts:
        await collect(tts.synthesize("Hi."))
    payload = tts_server.app.requests[0].json
    assert payload["model"] == "gpt-4o-mini-tts" and payload["voice"] == "coral"
    assert payload["speed"] == 1.5 and payload["instructions"] == "Cheerful."


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="response_format"):
        OpenAITTS(base_url="http://x/v1", response_format="ogg")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="speed"):
        OpenAITTS(base_url="http://x/v1", speed=9)
