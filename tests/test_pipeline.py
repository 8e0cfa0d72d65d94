"""The pipeline's contracts: order, backpressure, failures that keep audio, cancellation."""

from __future__ import annotations

import time
import wave
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio
import numpy as np
import pytest

from tests.engines import ToneTTS, tone_for
from voicepipe import timeline as tl
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.files import WavFileSink
from voicepipe.audio.sinks.null import NullSink
from voicepipe.errors import AudioError, ConfigError, StreamInterrupted
from voicepipe.events import AudioPlayed, StageFailed, TextChunk, TextDelta
from voicepipe.lifecycle import Lifecycle
from voicepipe.llm.base import Message
from voicepipe.llm.text import TextSource
from voicepipe.pipeline import Pipeline

pytestmark = pytest.mark.anyio

ANSWER = (
    "The sky looks blue, mostly because of Rayleigh scattering. Short wavelengths scatter "
    "more than long ones. At sunset the light travels farther, so reds win. That is all."
)


def wav_samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")


class FailingSource(Lifecycle):
    """Streams some words, then fails the way a dropped provider connection does."""

    name = "failing"

    def __init__(self, text: str, fail_after_words: int) -> None:
        self.words = text.split(" ")
        self.fail_after_words = fail_after_words
        self.closed = False

    async def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        try:
            for i, word in enumerate(self.words):
                if i == self.fail_after_words:
                    raise StreamInterrupted("connection dropped mid-answer", provider="failing")
                yield ("" if i == 0 else " ") + word
                await anyio.lowlevel.checkpoint()
        finally:
            self.closed = True


async def test_audio_is_the_chunks_synthesized_in_order(tmp_path: Path) -> None:
    tts = ToneTTS()
    out = tmp_path / "answer.wav"
    with anyio.fail_after(10):
        run = await Pipeline(TextSource(0), tts, chunking="sentence").speak(
            ANSWER, WavFileSink(out)
        )
    assert run.answer == ANSWER
    assert " ".join(run.chunks) == " ".join(ANSWER.split())
    assert len(run.chunks) == 4
    assert tts.requests == run.chunks
    expected = np.concatenate([tone_for(c, 16000, tts.seconds_per_word) for c in run.chunks])
    np.testing.assert_array_equal(wav_samples(out), expected)
    assert run.audio_seconds == pytest.approx(len(expected) / 16000)


async def test_events_and_timeline_follow_the_flow() -> None:
    events = []
    with anyio.fail_after(10):
        async with Pipeline(TextSource(0), ToneTTS()).run(ANSWER) as run:
            async for event in run:
                events.append(event)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == ANSWER
    chunk_indices = [e.index for e in events if isinstance(e, TextChunk)]
    assert chunk_indices == list(range(len(run.chunks)))
    for e in events:
        if isinstance(e, AudioPlayed):
            first_text = next(
                i for i, x in enumerate(events) if isinstance(x, TextChunk) and x.index == e.index
            )
            assert first_text < events.index(e)
    m = run.metrics
    assert m.ttft_ms is not None and m.first_chunk_ms is not None
    assert m.tts_first_audio_ms is not None and m.ttfa_ms is not None and m.total_ms is not None
    assert 0 <= m.ttft_ms <= m.first_chunk_ms <= m.tts_first_audio_ms <= m.ttfa_ms <= m.total_ms
    assert m.first_chunk_text == run.chunks[0]


async def test_adaptive_releases_a_short_first_clause() -> None:
    with anyio.fail_after(10):
        run = await Pipeline(TextSource(0), ToneTTS(), chunking="adaptive").speak(
            ANSWER, NullSink()
        )
    assert run.chunks[0] == "The sky looks blue,"
    assert " ".join(run.chunks) == " ".join(ANSWER.split())


async def test_naive_waits_for_the_whole_answer() -> None:
    with anyio.fail_after(10):
        run = await Pipeline(TextSource(0), ToneTTS(), chunking="naive").speak(ANSWER, NullSink())
    assert run.chunks == [ANSWER]
    llm_done = run.timeline.first(tl.LLM_DONE)
    first_chunk = run.timeline.first(tl.TEXT_CHUNK)
    assert llm_done is not None and first_chunk is not None and first_chunk.t >= llm_done.t


async def test_backpressure_bounds_what_runs_ahead() -> None:
    class SlowSink(NullSink):
        async def write(self, chunk):  # type: ignore[no-untyped-def]
            await anyio.sleep(0.01)
            await super().write(chunk)

    text = " ".join(f"Sentence number {i} is here." for i in range(30))
    pipe = Pipeline(
        TextSource(0), ToneTTS(seconds_per_word=0.1), chunking="sentence", queue_seconds=1.0
    )
    with anyio.fail_after(20):
        run = await pipe.speak(text, SlowSink(realtime=False))
    queued = [e.data["queued_s"] for e in run.timeline.all(tl.SINK_AUDIO)]
    assert len(queued) == 60  # 30 chunks, two pieces each: nothing dropped
    assert max(queued) <= 1.0 + 1e-9


async def test_llm_failure_mid_answer_keeps_what_was_said(tmp_path: Path) -> None:
    source = FailingSource(ANSWER, fail_after_words=12)
    out = tmp_path / "partial.wav"
    events = []
    with anyio.fail_after(10), pytest.raises(StreamInterrupted, match="dropped"):
        async with Pipeline(source, ToneTTS(), chunking="sentence").run(
            ANSWER, WavFileSink(out)
        ) as run:
            async for event in run:
                events.append(event)
    assert source.closed
    assert any(isinstance(e, StageFailed) and e.stage == "llm" for e in events)
    said = " ".join(ANSWER.split(" ")[:12])
    assert " ".join(run.chunks) == said
    # Everything the model said before the failure was spoken and is in a valid file.
    expected = np.concatenate([tone_for(c, 16000, 0.05) for c in run.chunks])
    np.testing.assert_array_equal(wav_samples(out), expected)


async def test_tts_failure_keeps_earlier_audio(tmp_path: Path) -> None:
    out = tmp_path / "partial.wav"
    tts = ToneTTS(fail_at_index=1)
    with anyio.fail_after(10), pytest.raises(Exception, match="failed on purpose"):
        await Pipeline(TextSource(0), tts, chunking="sentence").speak(ANSWER, WavFileSink(out))
    np.testing.assert_array_equal(wav_samples(out), tone_for(tts.requests[0], 16000, 0.05))


async def test_cancellation_stops_every_stage_and_keeps_a_valid_file(tmp_path: Path) -> None:
    out = tmp_path / "cut.wav"
    tts = ToneTTS(delay=0.02)
    source = TextSource(tokens_per_second=200)
    wrote = anyio.Event()

    class Watched(WavFileSink):
        async def write(self, chunk: AudioChunk) -> None:
            await super().write(chunk)
            wrote.set()

    finished = False
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def cut() -> None:
                # Mid-answer, once audio is in the file (not after a fixed time: on a busy
                # machine 0.3 s may come before the first chunk).
                await wrote.wait()
                await anyio.sleep(0.05)
                tg.cancel_scope.cancel()

            tg.start_soon(cut)
            await Pipeline(source, tts, chunking="sentence").speak(ANSWER * 5, Watched(out))
            finished = True
    assert not finished
    assert tts.closed == len(tts.requests)  # every synthesis generator was closed
    samples = wav_samples(out)
    assert 0 < len(samples) < len(np.concatenate([tone_for(c, 16000, 0.05) for c in tts.requests]))


async def test_bad_input_fails_before_any_request(tmp_path: Path) -> None:
    tts = ToneTTS()
    pipe = Pipeline(TextSource(0), tts)
    with pytest.raises(ConfigError, match="empty"):
        await pipe.speak("   ")
    with pytest.raises(AudioError, match="does not exist"):
        await pipe.speak("Hello.", WavFileSink(tmp_path / "missing" / "a.wav"))
    with pytest.raises(ConfigError, match="chunking"):
        Pipeline(TextSource(0), tts, chunking="words")  # type: ignore[arg-type]
    assert tts.requests == []


async def test_a_run_that_fails_before_audio_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "nothing.wav"
    with anyio.fail_after(10), pytest.raises(StreamInterrupted):
        await Pipeline(FailingSource(ANSWER, 0), ToneTTS()).speak(ANSWER, WavFileSink(out))
    assert not out.exists()


class BurstThenSilence:
    """Writes a burst of sentences, goes quiet for ``pause`` seconds, then ends."""

    name = "burst"

    def __init__(self, sentences: list[str], pause: float) -> None:
        self.sentences = sentences
        self.pause = pause
        self.resumed_at: float | None = None

    async def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        for i, sentence in enumerate(self.sentences):
            yield ("" if i == 0 else " ") + sentence
            await anyio.sleep(0.02)
        yield " Then"  # shows the last sentence has ended, so it may be held
        await anyio.sleep(self.pause)
        self.resumed_at = time.perf_counter()
        yield " the end."


# Sentence names in words: the speech text is then the text as written (digits would be read
# out as words by the normalizer, which is not what these tests are about).
NAMES = "one two three four five six seven eight nine ten eleven twelve".split()


async def test_adaptive_grows_chunks_once_audio_is_queued_and_never_runs_dry() -> None:
    sentences = [f"This is sentence number {name}, with a few words." for name in NAMES]
    # ~0.36 s of audio per sentence, synthesized at once: ~4.3 s queued when the model
    # goes quiet for 3.5 s, so held text must go to synthesis during the silence.
    source = BurstThenSilence(sentences, pause=3.5)
    tts = ToneTTS(seconds_per_word=0.04)
    with anyio.fail_after(20):
        run = await Pipeline(source, tts, chunking="adaptive").speak(
            " ".join(sentences), NullSink(realtime=True)
        )
    assert " ".join(run.chunks) == " ".join([*sentences, "Then the end."])
    # Later chunks hold several sentences (fewer, longer TTS requests) ...
    assert len(run.chunks) < len(sentences)
    assert max(c.count("sentence number") for c in run.chunks) >= 2
    # ... but held text went to synthesis while the model was silent, before audio ran out.
    assert run.metrics.underrun_ms == 0
    assert source.resumed_at is not None
    held_releases = [
        e.t for e in run.timeline.all(tl.TEXT_CHUNK) if "sentence number twelve" in e.data["text"]
    ]
    assert held_releases and held_releases[0] < source.resumed_at


async def test_sentence_chunking_never_holds() -> None:
    sentences = [f"This is sentence number {name}, with a few words." for name in NAMES[:6]]
    with anyio.fail_after(10):
        run = await Pipeline(
            BurstThenSilence(sentences, 0.0), ToneTTS(seconds_per_word=0.1), chunking="sentence"
        ).speak("x", NullSink(realtime=True))
    assert run.chunks == [*sentences, "Then the end."]


async def test_speak_keeps_no_events_so_a_long_answer_is_not_held_in_memory() -> None:
    with anyio.fail_after(10):
        run = await Pipeline(TextSource(0), ToneTTS()).speak(ANSWER, NullSink())
    assert run.audio_seconds > 0 and " ".join(run.chunks) == ANSWER
    with pytest.raises(RuntimeError, match="iterate a Run"):
        run.__aiter__()  # events were off: AudioPlayed would have kept every chunk's audio
