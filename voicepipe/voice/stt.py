"""Speech to text through OpenAI's ``POST /v1/audio/transcriptions``, or a server that copies it.

One utterance is uploaded whole, as a 16-bit mono WAV in a multipart form with the ``model``
field; the answer's ``text`` is returned. Local whisper servers (faster-whisper-server,
whisper.cpp's server, speaches) speak the same protocol: point ``base_url`` at them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import numpy as np
import numpy.typing as npt

from voicepipe.audio.wav import wav_header
from voicepipe.errors import ConfigError, ProviderError
from voicepipe.transport.http import (
    ClientOwner,
    json_object,
    provider_key,
    provider_message,
    redact,
)

__all__ = ["STT_PROVIDERS", "OpenAITranscriber", "make_stt", "wav_bytes"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
KEY_ENV = "OPENAI_API_KEY"
STT_PROVIDERS = {"openai": "openai:MODEL (default openai:whisper-1); --stt-url for a local server"}


def wav_bytes(samples: npt.NDArray[np.int16], sample_rate: int) -> bytes:
    """A whole mono PCM16 WAV file holding ``samples``."""
    data = np.asarray(samples, dtype="<i2").tobytes()
    return wav_header(sample_rate, len(data)) + data


def _is_openai(base_url: str) -> bool:
    return (urlsplit(base_url).hostname or "").lower() == "api.openai.com"


class OpenAITranscriber(ClientOwner):
    """Transcribes utterances with an OpenAI-compatible ``/audio/transcriptions`` endpoint.

    The key is ``api_key`` or, for api.openai.com only, ``$OPENAI_API_KEY`` (never sent to
    other hosts).
    """

    name = "openai"

    def __init__(
        self,
        model: str = "whisper-1",
        *,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        language: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(client)
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.language = language
        self.timeout = timeout
        self._api_key, _ = provider_key(
            api_key, official=_is_openai(self.base_url), var=KEY_ENV, provider=self.name
        )

    def __repr__(self) -> str:
        return f"OpenAITranscriber(model={self.model!r}, base_url={self.base_url!r})"

    async def transcribe(self, samples: npt.NDArray[np.int16], sample_rate: int) -> str:
        """The text spoken in ``samples`` (mono int16), stripped; empty if nothing was heard."""
        data: dict[str, str] = {"model": self.model, "response_format": "json"}
        if self.language:
            data["language"] = self.language
        headers = {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        url = f"{self.base_url}/audio/transcriptions"
        secrets = [self._api_key or ""]
        try:
            response = await self._http().post(
                url,
                data=data,
                files={"file": ("speech.wav", wav_bytes(samples, sample_rate), "audio/wav")},
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise ProviderError(
                redact(f"openai transcription request to {url} failed: {exc}; try again", secrets),
                provider=self.name,
                retryable=True,
            ) from exc
        payload = json_object(response.content)
        if response.status_code >= 400:
            message = provider_message(payload) or response.text.strip()[:300] or "no details"
            raise ProviderError(
                redact(
                    f"openai transcription failed (HTTP {response.status_code}): {message}",
                    secrets,
                ),
                provider=self.name,
                status=response.status_code,
                retryable=response.status_code in (408, 409, 429) or response.status_code >= 500,
            )
        text = payload.get("text") if payload is not None else None
        if not isinstance(text, str):
            raise ProviderError(
                f"openai transcription answer from {url} has no text field; "
                "check --stt-url points at an /audio/transcriptions server",
                provider=self.name,
                status=response.status_code,
            )
        return text.strip()


def make_stt(spec: str, *, url: str | None = None) -> OpenAITranscriber:
    """The transcriber a ``--stt`` spec names: ``openai`` or ``openai:MODEL``."""
    name, _, model = spec.partition(":")
    if name.lower() != "openai":
        raise ConfigError(f"unknown --stt provider {name!r}: use {STT_PROVIDERS['openai']}")
    return OpenAITranscriber(model or "whisper-1", base_url=url or OPENAI_BASE_URL)
