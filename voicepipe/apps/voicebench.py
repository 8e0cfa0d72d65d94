"""Voice-to-voice latency: a recorded utterance in, the first audio of the answer out.

Each run plays a WAV (its trailing silence trimmed, then 1.5 s of silence) into a
``RecordedMicrophone`` in real time; the real listener, voice detector and transcriber
(``VoiceInput.next_text``, which starts transcribing at the first pause) turn it into text,
and the pipeline answers it into a real-time null sink. Every time is measured from the end
of the user's speech (the last block of the WAV entering the microphone):

    end of speech ─▶ end detected ─▶ transcript ─▶ first token ─▶ first audio
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import numpy as np
import numpy.typing as npt

from voicepipe.apps.chat import VoiceInput
from voicepipe.audio.decode import read_audio
from voicepipe.audio.sinks.null import NullSink
from voicepipe.errors import ConfigError
from voicepipe.metrics import stats
from voicepipe.pipeline import Pipeline
from voicepipe.voice.base import LISTEN_RATE, SpeechClassifier, Transcriber
from voicepipe.voice.listener import Listener
from voicepipe.voice.microphone import RecordedMicrophone
from voicepipe.voice.vad import VoiceActivity, level_dbfs

__all__ = ["VOICE_STAGES", "VoiceRun", "bench_voice", "load_utterance", "voice_summary"]

VOICE_STAGES = ("end_detected_ms", "transcript_ms", "first_token_ms", "first_audio_ms")
_TRAILING_DBFS = -50.0  # quieter than this at the end of a recording is not speech
_AFTER_S = 1.5  # silence played after the utterance


@dataclass(frozen=True)
class VoiceRun:
    """One utterance's trip, each time in ms from the end of the user's speech."""

    utterance: str
    transcript: str
    answer: str
    end_detected_ms: float
    transcript_ms: float
    first_token_ms: float | None
    first_audio_ms: float | None


@dataclass
class Utterance:
    name: str
    samples: npt.NDArray[np.int16]
    sample_rate: int
    runs: list[VoiceRun] = field(default_factory=list)


async def load_utterance(path: str | Path) -> Utterance:
    """A recording as the user's utterance, its trailing silence trimmed.

    :raises ConfigError: the file cannot be read or holds no sound.
    """
    try:
        data = await anyio.Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    samples, rate = await read_audio(data)
    frame = max(1, rate // 50)
    end = len(samples)
    while end > 0 and level_dbfs(samples[max(0, end - frame) : end]) < _TRAILING_DBFS:
        end -= frame
    if end <= 0:
        raise ConfigError(f"{path} holds no sound to use as an utterance")
    return Utterance(Path(path).name, samples[:end], rate)


async def _one(
    pipe: Pipeline,
    transcriber: Transcriber,
    classifier: SpeechClassifier | None,
    utterance: Utterance,
) -> VoiceRun:
    microphone = RecordedMicrophone()
    voice = VoiceInput(Listener(microphone, VoiceActivity(), classifier), transcriber)
    ended = anyio.Event()
    speech_end = 0.0

    async def user() -> None:
        nonlocal speech_end
        speech_end = await microphone.play(utterance.samples, utterance.sample_rate)
        ended.set()
        await microphone.play(np.zeros(int(_AFTER_S * LISTEN_RATE), np.int16))

    async with anyio.create_task_group() as tg:
        tg.start_soon(user)
        text = await voice.next_text()
        heard_at = time.perf_counter()
        tg.cancel_scope.cancel()
    if not ended.is_set():
        raise ConfigError(f"the detector ended {utterance.name} before it was over")
    detected = voice.utterance_ended_at or heard_at
    if not text:
        return VoiceRun(utterance.name, "", "", 0, 0, None, None)
    run = await pipe.speak(text, NullSink(realtime=True))
    m = run.metrics
    llm_start = run.timeline.first("llm.request")
    assert llm_start is not None
    offset = (llm_start.t - speech_end) * 1000  # end of speech -> the LLM request

    def later(ms: float | None) -> float | None:
        return None if ms is None else offset + ms

    return VoiceRun(
        utterance.name,
        text,
        run.answer,
        (detected - speech_end) * 1000,
        (heard_at - speech_end) * 1000,
        later(m.ttft_ms),
        later(m.ttfa_ms),
    )


async def bench_voice(
    pipe: Pipeline,
    transcriber: Transcriber,
    utterances: Sequence[Utterance],
    *,
    n: int = 5,
    warmup: int = 1,
    classifier: Callable[[], SpeechClassifier | None] = lambda: None,
    on_run: Callable[[VoiceRun, bool], None] | None = None,
) -> list[Utterance]:
    """Run each utterance ``n`` times after ``warmup`` rounds; models must be prepared."""
    if n < 1 or warmup < 0:
        raise ConfigError("-n must be at least 1 and --warmup at least 0")
    for round_ in range(warmup + n):
        for utterance in utterances:
            measured = await _one(pipe, transcriber, classifier(), utterance)
            if round_ >= warmup:
                utterance.runs.append(measured)
            if on_run is not None:
                on_run(measured, round_ < warmup)
    return list(utterances)


def voice_summary(runs: Sequence[VoiceRun]) -> dict[str, dict[str, float | None]]:
    """p50/p95/min/max of each stage over the runs that heard something."""
    return {
        name: stats([v for r in runs if (v := getattr(r, name)) is not None and r.transcript])
        for name in VOICE_STAGES
    }
