"""`POST /v1/audio/transcriptions` over real HTTP, with the local Whisper behind it."""

from __future__ import annotations

import io
import shutil
import wave
from collections.abc import Iterator

import anyio
import httpx
import numpy as np
import numpy.typing as npt
import pytest

from tests.engines import ToneTTS
from tests.servers import serve
from tests.voice.speech import piper_says, silence
from voicepipe.apps.server.app import ServerSettings, create_app
from voicepipe.llm.text import TextSource
from voicepipe.voice.base import LISTEN_RATE
from voicepipe.voice.whisper import LocalTranscriber

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def wav(samples: npt.NDArray[np.int16], rate: int = LISTEN_RATE) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return out.getvalue()


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = create_app(TextSource(0), ToneTTS(), ServerSettings(), LocalTranscriber())
    with serve(app, lifespan="on") as base:  # the model loads in the app's startup
        yield base


async def post(url: str, data: bytes, name: str = "q.wav", **fields: str) -> httpx.Response:
    with anyio.fail_after(60):
        async with httpx.AsyncClient() as client:
            return await client.post(
                f"{url}/v1/audio/transcriptions",
                files={"file": (name, data)},
                data={"model": "whisper-1", **fields},
            )


async def test_a_wav_is_transcribed_as_openai_answers(url: str) -> None:
    speech = wav(np.concatenate([silence(0.2), piper_says("What do bees make?"), silence(0.2)]))
    answer = await post(url, speech)
    assert answer.status_code == 200, answer.text
    assert answer.json()["text"].lower().strip(" ?.") == "what do bees make"
    text = await post(url, speech, response_format="text")
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text.lower().strip(" ?.\n") == "what do bees make"
    verbose = (await post(url, speech, response_format="verbose_json")).json()
    assert verbose["language"] == "english" and verbose["duration"] > 1.0


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg (scripts/test installs it)")
async def test_other_formats_go_through_ffmpeg(url: str) -> None:
    speech = wav(piper_says("The capital of France is Paris."))
    encoded = await anyio.run_process(
        ["ffmpeg", "-loglevel", "error", "-i", "pipe:0", "-c:a", "libopus", "-f", "ogg", "pipe:1"],
        input=speech,
    )
    ogg = encoded.stdout
    answer = await post(url, ogg, name="q.ogg")
    assert answer.status_code == 200, answer.text
    assert "paris" in answer.json()["text"].lower()


async def test_silence_is_empty_text(url: str) -> None:
    answer = await post(url, wav(silence(2)))
    assert answer.status_code == 200 and answer.json() == {"text": ""}


async def test_bad_uploads_are_400s_with_a_message(url: str) -> None:
    not_audio = await post(url, b"this is a text file, not audio", name="notes.txt")
    assert not_audio.status_code == 400
    assert "not audio" in not_audio.json()["error"]["message"]
    bad_format = await post(url, wav(silence(0.5)), response_format="srt")
    assert bad_format.status_code == 400 and "response_format" in bad_format.text
    with anyio.fail_after(30):
        async with httpx.AsyncClient() as client:
            no_file = await client.post(
                f"{url}/v1/audio/transcriptions", data={"model": "whisper-1"}, files={"x": b""}
            )
            as_json = await client.post(f"{url}/v1/audio/transcriptions", json={"file": "x"})
    assert no_file.status_code == 400 and "file field" in no_file.text
    assert as_json.status_code == 415


async def test_a_server_without_stt_says_so() -> None:
    app = create_app(TextSource(0), ToneTTS())
    with serve(app) as base:
        answer = await post(base, wav(silence(0.5)))
    assert answer.status_code == 501 and "--stt" in answer.text
