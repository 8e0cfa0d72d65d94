"""Speech to text through OpenAI's ``POST /v1/audio/transcriptions``, or a server that copies it.

One utterance is uploaded whole, as a 16-bit mono WAV in a multipart form with the ``model``
field; the answer's ``text`` is returned. Local whisper servers (faster-whisper-server,
whisper.cpp's server, speaches) speak the same protocol: point ``base_url`` at them.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Unpack

import numpy as np
import numpy.typing as npt

from voicepipe.audio.wav import wav_header
from voicepipe.errors import ProviderError
from voicepipe.transport.keys import OPENAI_BASE_URL, OPENAI_KEY
from voicepipe.transport.provider import HTTPOptions, HTTPProvider
from voicepipe.transport.settings import Timeouts
from voicepipe.transport.wording import json_object

__all__ = ["OpenAITranscriber", "wav_bytes"]


def wav_bytes(samples: npt.NDArray[np.int16], sample_rate: int) -> bytes:
    """A whole mono PCM16 WAV file holding ``samples``."""
    data = np.asarray(samples, dtype="<i2").tobytes()
    return wav_header(sample_rate, len(data)) + data


class OpenAITranscriber(HTTPProvider):
    """Transcribes utterances with an OpenAI-compatible ``/audio/transcriptions`` endpoint.

    The key is ``api_key`` or, for api.openai.com only, ``$OPENAI_API_KEY`` (never sent to
    other hosts). ``timeout`` is how long the transcription may take to start arriving, and
    its longest pause; ``timeouts`` sets each phase instead.
    """

    name = "openai"
    key = OPENAI_KEY
    shown = ("model", "base_url")

    def __init__(
        self,
        model: str = "whisper-1",
        *,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        language: str | None = None,
        timeout: float = 60.0,
        **options: Unpack[HTTPOptions],
    ) -> None:
        options.setdefault("timeouts", Timeouts(first_byte=timeout, idle=timeout))
        super().__init__(base_url, api_key=api_key, **options)
        self.model = model
        self.language = language
        self.timeout = timeout

    async def transcribe(self, samples: npt.NDArray[np.int16], sample_rate: int) -> str:
        """The text spoken in ``samples`` (mono int16), stripped; empty if nothing was heard.

        :raises ConfigError: the base URL is not an http(s) URL.
        :raises ProviderError: the server failed, could not be reached or did not answer in
            time (after the retries the policy allows), or its answer has no text.
        :raises StreamInterrupted: the answer stalled or broke off while it was arriving.
        """
        fields: dict[str, str] = {"model": self.model, "response_format": "json"}
        if self.language:
            fields["language"] = self.language
        upload = {"file": ("speech.wav", wav_bytes(samples, sample_rate), "audio/wav")}
        async with (
            self._post("/audio/transcriptions", data=fields, files=upload) as response,
            aclosing(self._body(response)) as body,
        ):
            answer = b"".join([chunk async for chunk in body])
        payload = json_object(answer)
        text = payload.get("text") if payload is not None else None
        if not isinstance(text, str):
            raise ProviderError(
                f"openai transcription answer from {self.base_url}/audio/transcriptions has "
                "no text field; is it an OpenAI-compatible /audio/transcriptions server?",
                provider=self.name,
                status=response.status_code,
            )
        return text.strip()
