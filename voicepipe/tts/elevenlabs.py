"""ElevenLabs text-to-speech over HTTP streaming (``POST /v1/text-to-speech/{voice}/stream``).

``pcm_*`` formats are played as the bytes arrive; ``mp3_*``, ``opus_*``, ``ulaw_8000`` and
``alaw_8000`` are downloaded whole and decoded with ffmpeg, which adds latency.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Unpack
from urllib.parse import quote

import httpx

from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.decode import find_ffmpeg
from voicepipe.errors import ConfigError
from voicepipe.transport.keys import VendorKey
from voicepipe.transport.provider import HTTPOptions
from voicepipe.tts.httpaudio import HTTPSpeech, pcm_chunks

__all__ = ["ElevenLabsTTS"]

ELEVENLABS_BASE_URL = "https://api.elevenlabs.io"
# Headerless G.711 needs its format spelled out for ffmpeg.
_G711 = {"ulaw": "mulaw", "alaw": "alaw"}


def _parse_output_format(output_format: str) -> tuple[str, int]:
    """Split ``codec_rate[_bitrate]`` into codec and sample rate, or raise ConfigError."""
    parts = output_format.split("_")
    codec = parts[0]
    if codec in ("pcm", "mp3", "opus", *_G711) and len(parts) >= 2 and parts[1].isdigit():
        return codec, int(parts[1])
    raise ConfigError(
        f"unknown ElevenLabs output_format {output_format!r}: use pcm_16000, pcm_22050, "
        "pcm_24000, pcm_44100 (streamed), or mp3_44100_128, opus_48000_64, ulaw_8000 (decoded "
        "at the end, slower)"
    )


class ElevenLabsTTS(HTTPSpeech):
    """Speech from ElevenLabs' streaming endpoint; the key is ``api_key`` or $ELEVENLABS_API_KEY.

    ``optimize_streaming_latency`` (0–4) trades quality for speed; ``None`` leaves it unset.
    """

    name = "elevenlabs"
    key = VendorKey("ELEVENLABS_API_KEY", "elevenlabs.io")
    key_header = "xi-api-key"
    shown = ("voice_id", "model_id", "output_format")

    def __init__(
        self,
        voice_id: str,
        *,
        model_id: str = "eleven_flash_v2_5",
        base_url: str = ELEVENLABS_BASE_URL,
        api_key: str | None = None,
        output_format: str = "pcm_22050",
        optimize_streaming_latency: int | None = 3,
        voice_settings: dict[str, object] | None = None,
        language_code: str | None = None,
        **options: Unpack[HTTPOptions],
    ) -> None:
        if not voice_id.strip():
            raise ConfigError(
                "ElevenLabs needs a voice id (e.g. elevenlabs:21m00Tcm4TlvDq8ikWAM); "
                "list yours at https://elevenlabs.io/app/voice-lab"
            )
        if optimize_streaming_latency is not None and not 0 <= optimize_streaming_latency <= 4:
            raise ConfigError(
                "ElevenLabs optimize_streaming_latency must be 0-4 "
                f"(got {optimize_streaming_latency})"
            )
        self._codec, self.sample_rate = _parse_output_format(output_format)
        super().__init__(base_url, api_key=api_key, **options)
        self.voice_id = voice_id
        self.model_id = model_id
        self.output_format = output_format
        self.optimize_streaming_latency = optimize_streaming_latency
        self.voice_settings = voice_settings
        self.language_code = language_code
        if self._codec != "pcm":
            self._ffmpeg = find_ffmpeg(f"ElevenLabs output_format {output_format!r}")

    def _post_speech(self, text: str) -> AbstractAsyncContextManager[httpx.Response]:
        payload: dict[str, object] = {"text": text, "model_id": self.model_id}
        if self.voice_settings is not None:
            payload["voice_settings"] = self.voice_settings
        if self.language_code is not None:
            payload["language_code"] = self.language_code
        params = {"output_format": self.output_format}
        if self.optimize_streaming_latency is not None:
            params["optimize_streaming_latency"] = str(self.optimize_streaming_latency)
        path = f"/v1/text-to-speech/{quote(self.voice_id, safe='')}/stream"
        return self._post(path, json=payload, params=params, headers={"Accept": "audio/*"})

    def _decode(
        self, response: httpx.Response, body: AsyncIterator[bytes], text_index: int
    ) -> AsyncGenerator[AudioChunk, None]:
        if self._codec == "pcm":
            return pcm_chunks(body, sample_rate=self.sample_rate, text_index=text_index)
        input_args: list[str] = []
        if self._codec in _G711:
            input_args = ["-f", _G711[self._codec], "-ar", str(self.sample_rate), "-ac", "1"]
        return self._compressed(body, text_index, input_args)
