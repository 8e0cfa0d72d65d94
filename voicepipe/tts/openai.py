"""OpenAI text-to-speech (``POST /v1/audio/speech``), and the servers that copy it (Kokoro-FastAPI).

``pcm`` (24 kHz s16le mono) and ``wav`` are played as the bytes arrive; ``mp3``, ``opus``, ``aac``
and ``flac`` must be downloaded whole and decoded with ffmpeg first, which adds the full
synthesis time to the latency. Use ``pcm`` unless a server cannot produce it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Literal, Unpack

import httpx

from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.decode import find_ffmpeg
from voicepipe.errors import ConfigError
from voicepipe.transport.keys import OPENAI_BASE_URL, OPENAI_KEY
from voicepipe.transport.provider import HTTPOptions
from voicepipe.tts.httpaudio import HTTPSpeech, content_type_rate, pcm_chunks, wav_chunks

__all__ = ["OpenAITTS"]

ResponseFormat = Literal["pcm", "wav", "mp3", "opus", "aac", "flac"]

_FORMATS = ("pcm", "wav", "mp3", "opus", "aac", "flac")
# OpenAI's pcm and wav are 24 kHz; so are Kokoro's. A wav stream's header has the final word.
_DEFAULT_RATE = 24000


class OpenAITTS(HTTPSpeech):
    """Speech from OpenAI's ``/audio/speech`` endpoint or an OpenAI-compatible server.

    The key is ``api_key`` or, for api.openai.com only, ``$OPENAI_API_KEY`` (never sent to other
    hosts). ``sample_rate`` is 24000, OpenAI's rate; a wav header or a ``rate=`` content type
    that says otherwise sets the rate of that response's chunks, not the engine's.
    """

    name = "openai"
    key = OPENAI_KEY
    shown = ("model", "voice", "base_url", "response_format")

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
        **options: Unpack[HTTPOptions],
    ) -> None:
        if response_format not in _FORMATS:
            raise ConfigError(
                f"unknown OpenAI response_format {response_format!r}: use one of "
                + ", ".join(_FORMATS)
                + " (pcm streams fastest)"
            )
        if speed is not None and not 0.25 <= speed <= 4.0:
            raise ConfigError(f"OpenAI TTS speed must be between 0.25 and 4.0 (got {speed})")
        super().__init__(base_url, api_key=api_key, **options)
        self.model = model
        self.voice = voice
        self.response_format: ResponseFormat = response_format
        self.speed = speed
        self.instructions = instructions
        self.sample_rate = _DEFAULT_RATE
        if response_format not in ("pcm", "wav"):
            self._ffmpeg = find_ffmpeg(f"OpenAI response_format {response_format!r}")

    def _post_speech(self, text: str) -> AbstractAsyncContextManager[httpx.Response]:
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
        return self._post("/audio/speech", json=payload, headers=headers)

    def _decode(
        self, response: httpx.Response, body: AsyncIterator[bytes], text_index: int
    ) -> AsyncGenerator[AudioChunk, None]:
        if self.response_format == "pcm":
            rate = content_type_rate(response) or self.sample_rate
            return pcm_chunks(body, sample_rate=rate, text_index=text_index)
        if self.response_format == "wav":
            return wav_chunks(body, provider=self.name, text_index=text_index)
        return self._compressed(body, text_index)
