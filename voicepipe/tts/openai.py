"""OpenAI text-to-speech (``POST /v1/audio/speech``), and the servers that copy it (Kokoro-FastAPI).

``pcm`` (24 kHz s16le mono) and ``wav`` are played as the bytes arrive; ``mp3``, ``opus``, ``aac``
and ``flac`` must be downloaded whole and decoded with ffmpeg first, which adds the full
synthesis time to the latency. Use ``pcm`` unless a server cannot produce it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Literal
from urllib.parse import urlsplit

import httpx

from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.decode import find_ffmpeg
from voicepipe.errors import ConfigError
from voicepipe.transport.http import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    RetryPolicy,
    Timeouts,
    iter_body,
    open_stream,
    provider_key,
)
from voicepipe.tts.httpaudio import (
    ClientOwner,
    check_audio_response,
    compressed_chunks,
    content_type_rate,
    pcm_chunks,
    wav_chunks,
)

__all__ = ["OpenAITTS"]

ResponseFormat = Literal["pcm", "wav", "mp3", "opus", "aac", "flac"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
KEY_ENV = "OPENAI_API_KEY"
_FORMATS = ("pcm", "wav", "mp3", "opus", "aac", "flac")
# OpenAI's pcm and wav are 24 kHz; so are Kokoro's. A wav stream's header has the final word.
_DEFAULT_RATE = 24000


def _is_openai(base_url: str) -> bool:
    return (urlsplit(base_url).hostname or "").lower() == "api.openai.com"


class OpenAITTS(ClientOwner):
    """Speech from OpenAI's ``/audio/speech`` endpoint or an OpenAI-compatible server.

    The key is ``api_key`` or, for api.openai.com only, ``$OPENAI_API_KEY`` (never sent to other
    hosts). ``sample_rate`` is 24000 until a wav header or a ``rate=`` content type says otherwise.
    """

    name = "openai"

    def __init__(
        self,
        model: str = "tts-1",
        voice: str = "alloy",
        *,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        response_format: ResponseFormat = "pcm",
        speed: float | None = None,
        instructions: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        super().__init__(client)
        if response_format not in _FORMATS:
            raise ConfigError(
                f"unknown OpenAI response_format {response_format!r}: use one of "
                + ", ".join(_FORMATS)
                + " (pcm streams fastest)"
            )
        if speed is not None and not 0.25 <= speed <= 4.0:
            raise ConfigError(f"OpenAI TTS speed must be between 0.25 and 4.0 (got {speed})")
        self.model = model
        self.voice = voice
        self.base_url = base_url.rstrip("/")
        self.response_format: ResponseFormat = response_format
        self.speed = speed
        self.instructions = instructions
        self.timeouts = timeouts
        self.retry = retry
        self.sample_rate = _DEFAULT_RATE
        self._api_key, _ = provider_key(
            api_key, official=_is_openai(self.base_url), var=KEY_ENV, provider=self.name
        )
        self._ffmpeg = (
            find_ffmpeg(f"OpenAI response_format {response_format!r}")
            if response_format not in ("pcm", "wav")
            else None
        )

    def __repr__(self) -> str:
        return (
            f"OpenAITTS(model={self.model!r}, voice={self.voice!r}, base_url={self.base_url!r}, "
            f"response_format={self.response_format!r})"
        )

    def _set_rate(self, rate: int) -> None:
        self.sample_rate = rate

    async def synthesize(self, text: str, text_index: int = 0) -> AsyncGenerator[AudioChunk, None]:
        """Yield the speech for ``text`` as it arrives; empty text yields nothing."""
        if not text.strip():
            return
        payload: dict[str, object] = {
            "model": self.model,
            "input": text,
            "voice": self.voice,
            "response_format": self.response_format,
        }
        if self.speed is not None:
            payload["speed"] = self.speed
        if self.instructions is not None:
            payload["instructions"] = self.instructions
        headers = {"Accept": "application/octet-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        async with open_stream(
            self._http(),
            "POST",
            f"{self.base_url}/audio/speech",
            provider=self.name,
            json=payload,
            headers=headers,
            timeouts=self.timeouts,
            retry=self.retry,
            secrets=(self._api_key,) if self._api_key else (),
            key_env=KEY_ENV if _is_openai(self.base_url) else None,
        ) as response:
            await check_audio_response(response, provider=self.name)
            body = iter_body(response, provider=self.name, idle_timeout=self.timeouts.idle)
            chunks: AsyncGenerator[AudioChunk, None]
            if self.response_format == "pcm":
                rate = content_type_rate(response) or _DEFAULT_RATE
                self.sample_rate = rate
                chunks = pcm_chunks(body, sample_rate=rate, text_index=text_index)
            elif self.response_format == "wav":
                chunks = wav_chunks(
                    body, provider=self.name, text_index=text_index, on_format=self._set_rate
                )
            else:
                assert self._ffmpeg is not None
                chunks = compressed_chunks(
                    body,
                    provider=self.name,
                    ffmpeg=self._ffmpeg,
                    text_index=text_index,
                    on_format=self._set_rate,
                )
            async with aclosing(chunks):
                async for chunk in chunks:
                    yield chunk
