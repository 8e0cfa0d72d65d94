"""What the HTTP TTS engines share: an owned, reused client and turning a body into AudioChunks.

Bodies are decoded as they arrive: raw PCM and WAV are yielded chunk by chunk (network chunks
are not sample-aligned, so a partial sample is carried over); compressed formats are collected
and decoded with ffmpeg at the end.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

import httpx
import numpy as np

from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.decode import DecodeError, decode_audio
from voicepipe.audio.resample import mix_to_mono
from voicepipe.audio.wavstream import WavFormatError, WavStreamParser
from voicepipe.errors import ProviderError
from voicepipe.transport.http import ClientOwner, provider_message

__all__ = [
    "ClientOwner",
    "check_audio_response",
    "closing",
    "compressed_chunks",
    "content_type_rate",
    "pcm_chunks",
    "wav_chunks",
]

# Network chunks can be a few bytes; merge them to at least this much audio before yielding
# (a hundredth of a second: too short to hear, long enough to keep per-chunk overhead low).
_MIN_CHUNK_SECONDS = 0.01
# Decoded (compressed) audio is handed out in pieces of this length, like streamed audio.
_DECODED_CHUNK_SECONDS = 0.25
_MAX_ERROR_BODY = 64 * 1024

T = TypeVar("T")


@asynccontextmanager
async def closing(iterator: AsyncIterator[T]) -> AsyncGenerator[AsyncIterator[T], None]:
    """Like ``contextlib.aclosing`` for anything typed as an AsyncIterator (closed if it can be)."""
    try:
        yield iterator
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def content_type_rate(response: httpx.Response) -> int | None:
    """The Content-Type's ``rate=`` parameter (openedai-speech sends ``audio/pcm;rate=22050``)."""
    for part in response.headers.get("content-type", "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "rate" and value.strip().isdigit():
            rate = int(value.strip())
            return rate if rate > 0 else None
    return None


async def check_audio_response(response: httpx.Response, *, provider: str) -> None:
    """Raise ProviderError if a 2xx response carries JSON or text instead of audio."""
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (content_type.startswith("text/") or content_type.endswith("json")):
        return
    body = b""
    async for data in response.aiter_bytes():
        body += data
        if len(body) > _MAX_ERROR_BODY:
            break
    text = body.decode("utf-8", errors="replace").strip()
    try:
        message = provider_message(json.loads(text)) or text
    except ValueError:
        message = text
    raise ProviderError(
        f"{provider} answered with {content_type} instead of audio: {message[:300]!r}; "
        "check the base URL and the response format",
        provider=provider,
        status=response.status_code,
    )


async def pcm_chunks(
    body: AsyncIterator[bytes], *, sample_rate: int, text_index: int
) -> AsyncGenerator[AudioChunk, None]:
    """Yield headerless s16le mono PCM as AudioChunks as soon as ~10 ms of it has arrived."""
    minimum = max(2, int(sample_rate * _MIN_CHUNK_SECONDS) * 2)
    pending = bytearray()
    async with closing(body):
        async for data in body:
            pending += data
            if len(pending) >= minimum:
                usable = len(pending) & ~1
                yield AudioChunk.from_pcm16(bytes(pending[:usable]), sample_rate, text_index)
                del pending[:usable]
    usable = len(pending) & ~1  # an odd last byte is half a sample: nothing to play
    if usable:
        yield AudioChunk.from_pcm16(bytes(pending[:usable]), sample_rate, text_index)


async def wav_chunks(
    body: AsyncIterator[bytes],
    *,
    provider: str,
    text_index: int,
    on_format: Callable[[int], None] | None = None,
) -> AsyncGenerator[AudioChunk, None]:
    """Yield a streamed WAV body (any header layout, sizes ignored) as mono AudioChunks.

    ``on_format(sample_rate)`` is called once the header has been read.
    """
    parser = WavStreamParser()
    pending = bytearray()
    announced = False
    try:
        async with closing(body):
            async for data in body:
                pending += parser.feed(data)
                wav = parser.format
                if wav is None:
                    continue
                if not announced:
                    announced = True
                    if on_format is not None:
                        on_format(wav.sample_rate)
                if len(pending) >= wav.sample_rate * _MIN_CHUNK_SECONDS * wav.frame_size:
                    yield _wav_chunk(bytes(pending), wav.channels, wav.sample_rate, text_index)
                    pending.clear()
        parser.finish()
    except WavFormatError as exc:
        raise ProviderError(
            f"{provider} sent a WAV stream voicepipe cannot read: {exc}",
            provider=provider,
        ) from exc
    wav = parser.format
    if pending and wav is not None:
        yield _wav_chunk(bytes(pending), wav.channels, wav.sample_rate, text_index)


def _wav_chunk(pcm: bytes, channels: int, sample_rate: int, text_index: int) -> AudioChunk:
    frames = np.frombuffer(pcm, dtype="<i2").astype(np.int16).reshape(-1, channels)
    return AudioChunk(mix_to_mono(frames), sample_rate, text_index)


async def compressed_chunks(
    body: AsyncIterator[bytes],
    *,
    provider: str,
    ffmpeg: str,
    text_index: int,
    input_args: Sequence[str] = (),
    on_format: Callable[[int], None] | None = None,
) -> AsyncGenerator[AudioChunk, None]:
    """Collect a compressed body, decode it with ffmpeg, yield it in quarter-second pieces."""
    data = bytearray()
    async with closing(body):
        async for piece in body:
            data += piece
    if not data:
        return
    try:
        samples, rate = await decode_audio(bytes(data), ffmpeg=ffmpeg, input_args=input_args)
    except DecodeError as exc:
        raise ProviderError(
            f"{provider} sent audio that ffmpeg cannot decode: {exc}", provider=provider
        ) from exc
    if on_format is not None:
        on_format(rate)
    step = max(1, int(rate * _DECODED_CHUNK_SECONDS))
    for start in range(0, len(samples), step):
        yield AudioChunk(samples[start : start + step].copy(), rate, text_index)
