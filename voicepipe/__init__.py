"""voicepipe: make an LLM talk; speech starts while the model is still writing.

async with Pipeline(make_llm("local"), make_tts("piper")) as pipe:
    async with pipe.run("Why is the sky blue?", PlaybackSink()) as run:
        async for event in run:
            ...
    print(run.metrics.ttfa_ms)
    await pipe.say("Text you already have.")          # no LLM; on the speakers
    async for chunk in pipe.audio("Count to three."):  # the audio, chunk by chunk
        ...

voicepipe.speak_sync("Why is the sky blue?")           # blocking: scripts and notebooks
"""

from __future__ import annotations

from voicepipe.apps.bench import BenchConfig, BenchResult, bench
from voicepipe.apps.chat import Conversation
from voicepipe.apps.traces import TraceStore
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.base import AudioSink
from voicepipe.audio.sinks.files import EncodedFileSink, WavFileSink, file_sink
from voicepipe.audio.sinks.null import NullSink
from voicepipe.audio.sinks.playback import PlaybackSink
from voicepipe.audio.sinks.tee import TeeSink
from voicepipe.blocking import BlockingPipeline, say_sync, speak_sync
from voicepipe.errors import (
    AudioError,
    ConfigError,
    MissingKey,
    MissingModel,
    NoDevice,
    ProviderError,
    StreamInterrupted,
    VoicepipeError,
)
from voicepipe.events import AudioPlayed, PipelineEvent, StageFailed, TextChunk, TextDelta
from voicepipe.metrics import RunMetrics, run_metrics, summarize
from voicepipe.pipeline import Pipeline, Run, SpeechText
from voicepipe.providers import make_llm, make_stt, make_tts
from voicepipe.text.sentences import SentenceBuffer, split_sentences
from voicepipe.text.speech import SpeechNormalizer, to_speech
from voicepipe.timeline import Event, Timeline

__all__ = [
    "AudioChunk",
    "AudioError",
    "AudioPlayed",
    "AudioSink",
    "BenchConfig",
    "BenchResult",
    "BlockingPipeline",
    "ConfigError",
    "Conversation",
    "EncodedFileSink",
    "Event",
    "MissingKey",
    "MissingModel",
    "NoDevice",
    "NullSink",
    "Pipeline",
    "PipelineEvent",
    "PlaybackSink",
    "ProviderError",
    "Run",
    "RunMetrics",
    "SentenceBuffer",
    "SpeechNormalizer",
    "SpeechText",
    "StageFailed",
    "StreamInterrupted",
    "TeeSink",
    "TextChunk",
    "TextDelta",
    "Timeline",
    "TraceStore",
    "VoicepipeError",
    "WavFileSink",
    "bench",
    "file_sink",
    "make_llm",
    "make_stt",
    "make_tts",
    "run_metrics",
    "say_sync",
    "speak_sync",
    "split_sentences",
    "summarize",
    "to_speech",
]
