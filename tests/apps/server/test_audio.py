"""The server's PCM is one resampled stream: seamless, sample-accurate, the same every time."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import numpy as np
import numpy.typing as npt
import pytest

from tests.engines import ToneTTS, tone_for
from tests.servers import serve
from voicepipe.apps.server.app import create_app
from voicepipe.apps.server.audio import OPENAI_PCM_RATE, pcm_stream
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.resample import expected_length, resample
from voicepipe.llm.text import TextSource

pytestmark = pytest.mark.anyio

ENGINE_RATE = 22050  # Piper's rate: the server must convert to OpenAI's 24 kHz


def sine(seconds: float, rate: int = ENGINE_RATE) -> npt.NDArray[np.int16]:
    t = np.arange(round(rate * seconds)) / rate
    return np.round(12000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def cut(signal: npt.NDArray[np.int16], seed: int) -> list[npt.NDArray[np.int16]]:
    """The signal in uneven chunks, 1 to 2,000 samples, as engines and sentences cut it."""
    rng = np.random.default_rng(seed)
    edges = np.cumsum(rng.integers(1, 2000, size=len(signal)))
    edges = edges[edges < len(signal)]
    return np.split(signal, edges)


async def stream_bytes(chunks: list[npt.NDArray[np.int16]], rate: int) -> bytes:
    send, receive = anyio.create_memory_object_stream[AudioChunk](len(chunks) + 1)
    async with send:
        for i, part in enumerate(chunks):
            await send.send(AudioChunk(part, ENGINE_RATE, i))
    return b"".join([data async for data in pcm_stream(receive, rate)])


def largest_step(samples: npt.NDArray[np.int16]) -> int:
    return int(np.abs(np.diff(samples.astype(np.int32))).max())


async def test_a_sine_across_many_joins_is_resampled_as_one_signal() -> None:
    """Byte for byte the one-shot conversion: a lost sample or a click at any join fails."""
    signal = sine(2.0)
    chunks = cut(signal, seed=1)
    assert len(chunks) > 30
    out = np.frombuffer(await stream_bytes(chunks, OPENAI_PCM_RATE), "<i2")
    whole = resample(signal, ENGINE_RATE, OPENAI_PCM_RATE)
    assert len(out) == expected_length(len(signal), ENGINE_RATE, OPENAI_PCM_RATE) == 48000
    np.testing.assert_array_equal(out, whole)
    # A 440 Hz sine at 12000 moves at most 2*pi*440*12000/24000 ~ 1382 per sample; a click
    # (a join where samples went missing, or a filter restarted from silence) jumps further.
    body = out[200:-200]  # the ends ramp in and out of the filter, joins do not
    assert largest_step(body) <= 1400


async def test_resampling_each_chunk_alone_would_be_caught() -> None:
    """The old per-chunk conversion, checked the same way, fails: the test above can fail."""
    signal = sine(2.0)
    chunks = cut(signal, seed=1)
    per_chunk = np.concatenate([resample(c, ENGINE_RATE, OPENAI_PCM_RATE) for c in chunks])
    assert len(per_chunk) != expected_length(len(signal), ENGINE_RATE, OPENAI_PCM_RATE)
    assert largest_step(per_chunk[200:-200]) > 1400


async def test_a_rate_change_mid_stream_starts_a_new_stream() -> None:
    send, receive = anyio.create_memory_object_stream[AudioChunk](4)
    a, b = sine(0.5), sine(0.5, 16000)
    async with send:
        await send.send(AudioChunk(a, ENGINE_RATE, 0))
        await send.send(AudioChunk(b, 16000, 1))
    out = np.frombuffer(b"".join([d async for d in pcm_stream(receive, 24000)]), "<i2")
    expected = np.concatenate([resample(a, ENGINE_RATE, 24000), resample(b, 16000, 24000)])
    np.testing.assert_array_equal(out, expected)


@pytest.fixture
def url() -> Iterator[str]:
    tone = ToneTTS(ENGINE_RATE, pieces=7)  # each sentence in seven pieces: many joins
    with serve(create_app({"text": TextSource(0)}, {"tone": tone})) as base:
        yield base


async def test_identical_requests_get_identical_bytes_of_the_exact_length(url: str) -> None:
    # Eight words and no function word, so no phrase break: one text chunk whatever the
    # timing, so the engine's audio is the same both times and only resampling could differ.
    text = "Bright green parrots sing loudly every single morning"
    body = {"input": text, "response_format": "pcm"}
    with anyio.fail_after(20):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            first, second = [await client.post("/v1/audio/speech", json=body) for _ in "12"]
    assert first.status_code == second.status_code == 200
    assert first.headers["x-sample-rate"] == "24000"
    assert first.content == second.content
    frames = len(tone_for(text, ENGINE_RATE, 0.05))
    assert len(first.content) // 2 == expected_length(frames, ENGINE_RATE, 24000)
    expected = resample(tone_for(text, ENGINE_RATE, 0.05), ENGINE_RATE, 24000)
    assert first.content == expected.astype("<i2").tobytes()
