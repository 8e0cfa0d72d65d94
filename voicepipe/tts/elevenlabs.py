"""ElevenLabs text-to-speech over HTTP streaming (``POST /v1/text-to-speech/{voice}/stream``).

``pcm_*`` formats are played as the bytes arrive; ``mp3_*``, ``opus_*``, ``ulaw_8000`` and
``alaw_8000`` are downloaded whole and decoded with ffmpeg, which adds latency.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from urllib.parse import quote, urlsplit

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
    pcm_chunks,
)

__all__ = ["ElevenLabsTTS"]

ELEVENLABS_BASE_URL = "https://api.elevenlabs.io"
KEY_ENV = "ELEVENLABS_API_KEY"
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


class ElevenLabsTTS(ClientOwner):
    """Speech from ElevenLabs' streaming endpoint; the key is ``api_key`` or $ELEVENLABS_API_KEY.

    ``optimize_streaming_latency`` (0–4) trades quality for speed; ``None`` leaves it unset.
    """

    name = "elevenlabs"

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
        client: httpx.AsyncClient | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        super().__init__(client)
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
        self.voice_id = voice_id
        self.model_id = model_id
        self.base_url = base_url.rstrip("/")
        self.output_format = output_format
        self.optimize_streaming_latency = optimize_streaming_latency
        self.voice_settings = voice_settings
        self.language_code = language_code
        self.timeouts = timeouts
        self.retry = retry
        host = (urlsplit(self.base_url).hostname or "").lower()
        self._api_key, _ = provider_key(
            api_key,
            official=host == "elevenlabs.io" or host.endswith(".elevenlabs.io"),
            var=KEY_ENV,
            provider=self.name,
        )
        self._ffmpeg = (
            find_ffmpeg(f"ElevenLabs output_format {output_format!r}")
            if self._codec != "pcm"
            else None
        )

    def __repr__(self) -> str:
        return (
            f"ElevenLabsTTS(voice_id={self.voice_id!r}, model_id={self.model_id!r}, "
            f"output_format={self.output_format!r})"
        )

    def _set_rate(self, rate: int) -> None:
        self.sample_rate = rate

    async def synthesize(self, text: str, text_index: int = 0) -> AsyncGenerator[AudioChunk, None]:
        """Yield the speech for ``text`` as it arrives; empty text yields nothing."""
        if not text.strip():
            return
        payload: dict[str, object] = {"text": text, "model_id": self.model_id}
        if self.voice_settings is not None:
            payload["voice_settings"] = self.voice_settings
        if self.language_code is not None:
            payload["language_code"] = self.language_code
        params = {"output_format": self.output_format}
        if self.optimize_streaming_latency is not None:
            params["optimize_streaming_latency"] = str(self.optimize_streaming_latency)
        headers = {"Accept": "audio/*"}
        if self._api_key:
            headers["xi-api-key"] = self._api_key
        url = f"{self.base_url}/v1/text-to-speech/{quote(self.voice_id, safe='')}/stream"
        async with open_stream(
            self._http(),
            "POST",
            url,
            provider=self.name,
            json=payload,
            headers=headers,
            params=params,
            timeouts=self.timeouts,
            retry=self.retry,
            secrets=(self._api_key,) if self._api_key else (),
            key_env=KEY_ENV,
        ) as response:
            await check_audio_response(response, provider=self.name)
            body = iter_body(response, provider=self.name, idle_timeout=self.timeouts.idle)
            chunks: AsyncGenerator[AudioChunk, None]
            if self._codec == "pcm":
                chunks = pcm_chunks(body, sample_rate=self.sample_rate, text_index=text_index)
            else:
                assert self._ffmpeg is not None
                input_args: list[str] = []
                if self._codec in _G711:
                    input_args = ["-f", _G711[self._codec], "-ar", str(self.sample_rate)]
                    input_args += ["-ac", "1"]
                chunks = compressed_chunks(
                    body,
                    provider=self.name,
                    ffmpeg=self._ffmpeg,
                    text_index=text_index,
                    input_args=input_args,
                    on_format=self._set_rate,
                )
            async with aclosing(chunks):
                async for chunk in chunks:
                    yield chunk
