"""What the HTTP TTS engines share: the request loop, and turning a body into AudioChunks.

:class:`HTTPSpeech` posts the text and decodes the answer; a vendor's class supplies only the
request and which decoder fits its format. Bodies are decoded as they arrive: raw PCM and WAV
are yielded chunk by chunk (network chunks are not sample-aligned, so a partial sample is
carried over); compressed formats are collected and decoded with ffmpeg at the end.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from typing import TypeVar

import httpx
import numpy as np

from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.decode import DecodeError, decode_audio
from voicepipe.audio.resample import mix_to_mono
from voicepipe.audio.wavstream import WavFormatError, WavStreamParser
from voicepipe.errors import ProviderError
from voicepipe.transport.provider import HTTPProvider
from voicepipe.transport.wording import body_message, media_type, read_error_body

__all__ = [
    "HTTPSpeech",
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


async def check_audio_response(response: httpx.Response, *, provider: str, seconds: float) -> None:
    """Raise ProviderError if a 2xx response carries JSON or text instead of audio.

    The body is read for at most ``seconds`` to find the server's message.
    """
    content_type = media_type(response)
    if not (content_type.startswith("text/") or content_type.endswith("json")):
        return
    message = body_message(await read_error_body(response, seconds=seconds), "")
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


class HTTPSpeech(HTTPProvider):
    """A TTS engine behind an HTTP API: post the text, decode the audio as it arrives.

    A vendor's class sets ``sample_rate`` and implements ``_post_speech`` (its request) and
    ``_decode`` (which of the decoders above fits its format); ``_ffmpeg`` is the ffmpeg
    binary for compressed formats (None when the format is streamed raw).

    One engine serves many requests at once (``voicepipe serve`` shares it between sessions),
    so a request changes nothing on it: the rate a response turns out to have (a WAV header, a
    ``rate=`` content type, what ffmpeg decoded) travels in that response's chunks only, and
    ``sample_rate`` stays the rate configured.
    """

    sample_rate: int
    _ffmpeg: str | None = None

    def _post_speech(self, text: str) -> AbstractAsyncContextManager[httpx.Response]:
        """Send the request that speaks ``text`` (through ``_post``)."""
        raise NotImplementedError

    def _decode(
        self, response: httpx.Response, body: AsyncIterator[bytes], text_index: int
    ) -> AsyncGenerator[AudioChunk, None]:
        """The audio in ``body``, as the format of ``response`` says to read it."""
        raise NotImplementedError

    def _compressed(
        self, body: AsyncIterator[bytes], text_index: int, input_args: Sequence[str] = ()
    ) -> AsyncGenerator[AudioChunk, None]:
        """The whole compressed ``body`` decoded by ffmpeg, at the rate it was encoded at."""
        assert self._ffmpeg is not None, "a compressed format without ffmpeg"
        return compressed_chunks(
            body,
            provider=self.name,
            ffmpeg=self._ffmpeg,
            text_index=text_index,
            input_args=input_args,
        )

    async def synthesize(self, text: str, text_index: int = 0) -> AsyncGenerator[AudioChunk, None]:
        """Yield the speech for ``text`` as it arrives; empty text yields nothing.

        :raises ConfigError: the base URL is not an http(s) URL.
        :raises ProviderError: the request failed before any audio (HTTP status, no connection,
            first-byte timeout, text or JSON instead of audio, undecodable audio);
            ``retryable`` says if trying again may help.
        :raises StreamInterrupted: the audio stalled or broke off after it had started.
        """
        if not text.strip():
            return
        async with self._post_speech(text) as response:
            await check_audio_response(response, provider=self.name, seconds=self.timeouts.idle)
            chunks = self._decode(response, self._body(response), text_index)
            async with aclosing(chunks):
                async for chunk in chunks:
                    yield chunk
