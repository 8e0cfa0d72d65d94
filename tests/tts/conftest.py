from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.servers import serve
from tests.servers.tts import TTSServer
from voicepipe.tts.base import TTSEngine
from voicepipe.tts.elevenlabs import ElevenLabsTTS
from voicepipe.tts.espeak import EspeakTTS
from voicepipe.tts.openai import OpenAITTS


def engines_are_tts_engines(
    openai: OpenAITTS, elevenlabs: ElevenLabsTTS, espeak: EspeakTTS
) -> list[TTSEngine]:
    """Never called: mypy checks here that each engine satisfies the TTSEngine protocol."""
    return [openai, elevenlabs, espeak]


@dataclass
class RunningServer:
    app: TTSServer
    url: str


@pytest.fixture
def tts_server() -> Iterator[RunningServer]:
    """A fresh loopback TTS server per test; set ``app.behaviour`` before requesting."""
    app = TTSServer()
    with serve(app) as url:
        try:
            yield RunningServer(app, url)
        finally:
            app.release.set()
