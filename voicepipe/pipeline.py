"""The pipeline: LLM deltas -> speech text -> sentence buffer -> TTS -> bounded queue -> sink.

One anyio task group owns every stage. Cancelling it (Ctrl-C, a new turn, an error) stops
every stage, closes the HTTP streams and silences playback. A provider that fails mid-answer
stops its stage only: what was already released is still spoken or written, then the run
raises the error.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from voicepipe import timeline as tl
from voicepipe.audio.queue import AudioQueue
from voicepipe.audio.sinks.base import AudioSink
from voicepipe.audio.sinks.null import NullSink
from voicepipe.errors import ConfigError, ProviderError, VoicepipeError
from voicepipe.lifecycle import aclose_all, prepare_all
from voicepipe.llm.base import Message, TokenSource
from voicepipe.metrics import RunMetrics, run_metrics
from voicepipe.taskgroups import single_error
from voicepipe.text.sentences import Chunking, SentenceBuffer
from voicepipe.text.speech import SpeechNormalizer
from voicepipe.timeline import Timeline
from voicepipe.tts.base import TTSEngine

CHUNKINGS: tuple[Chunking, ...] = ("adaptive", "sentence", "naive")


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer as the LLM wrote it (for showing text in step with speech)."""

    text: str


@dataclass(frozen=True)
class TextChunk:
    """A chunk of speech text released to the TTS."""

    index: int
    text: str


@dataclass(frozen=True)
class AudioPlayed:
    """Audio for text chunk ``index`` was handed to the sink."""

    index: int
    seconds: float


@dataclass(frozen=True)
class StageFailed:
    """A stage failed; what it had produced is kept and the run raises ``error`` at the end."""

    stage: str
    error: VoicepipeError


PipelineEvent = TextDelta | TextChunk | AudioPlayed | StageFailed


@dataclass
class Run:
    """One prompt's trip through the pipeline: its events, timeline, answer and metrics."""

    timeline: Timeline = field(default_factory=Timeline)
    answer: str = ""  # the LLM's text, as written
    chunks: list[str] = field(default_factory=list)  # speech text sent to the TTS
    audio_seconds: float = 0.0
    error: VoicepipeError | None = None
    _events: MemoryObjectReceiveStream[PipelineEvent] | None = None

    @property
    def metrics(self) -> RunMetrics:
        return run_metrics(self.timeline)

    def __aiter__(self) -> AsyncIterator[PipelineEvent]:
        if self._events is None:
            raise RuntimeError("iterate a Run inside `async with pipeline.run(...)`")
        return self._events.__aiter__()


def as_messages(prompt: str | Sequence[Message], system: str | None) -> list[Message]:
    """A prompt string (or a message list) with the system prompt in front."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ConfigError("the prompt is empty: say what the assistant should answer")
        messages: list[Message] = [{"role": "user", "content": prompt}]
    else:
        messages = list(prompt)
        if not messages:
            raise ConfigError("no messages given")
    if system and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    return messages


class Pacer:
    """Releases text held back for chunk growth just before playback would need it.

    Adaptive chunking holds finished sentences while plenty of audio is queued (longer
    chunks sound better). The pacer reports the live playout level to the buffer whenever
    audio or text moves, and otherwise sleeps exactly until held text becomes due.
    """

    def __init__(
        self,
        buffer: SentenceBuffer,
        queued_seconds: Callable[[], float],
        realtime_factor: Callable[[], float],
    ) -> None:
        self.buffer = buffer
        self.queued_seconds = queued_seconds
        self.realtime_factor = realtime_factor
        self._changed = anyio.Event()

    def notify(self) -> None:
        """Audio or text moved: re-check the playout level."""
        self.buffer.set_playout(self.queued_seconds(), self.realtime_factor())
        self._changed.set()
        self._changed = anyio.Event()

    async def run(self, release: Callable[[list[str]], Awaitable[None]]) -> None:
        while True:
            self.buffer.set_playout(self.queued_seconds(), self.realtime_factor())
            due = self.buffer.release_due()
            if due:
                await release(due)
                continue
            slack = self.buffer.held_slack()
            wait = math.inf if slack is None else max(slack, 0.005)
            with anyio.move_on_after(wait):
                await self._changed.wait()


class Pipeline:
    """Speaks an LLM's answer while it is written. Reusable: models stay loaded across runs.

    ``async with Pipeline(llm, tts) as pipe`` loads both models up front (``prepare``) and
    releases them at the end; ``pipe.run(prompt, sink)`` is one answer.
    """

    def __init__(
        self,
        llm: TokenSource,
        tts: TTSEngine,
        *,
        chunking: Chunking = "adaptive",
        system: str | None = None,
        normalize: bool = True,
        code_blocks: Literal["skip", "mention"] = "mention",
        queue_seconds: float = 20.0,
        first_chunk_min_words: int = 3,
    ) -> None:
        if chunking not in CHUNKINGS:
            raise ConfigError(f"unknown chunking {chunking!r}: use one of {', '.join(CHUNKINGS)}")
        self.llm = llm
        self.tts = tts
        self.chunking: Chunking = chunking
        self.system = system
        self.normalize = normalize
        self.code_blocks: Literal["skip", "mention"] = code_blocks
        self.queue_seconds = queue_seconds
        self.first_chunk_min_words = first_chunk_min_words
        self._rtf = 0.3  # the TTS's measured real-time factor (smoothed); a cautious start

    async def prepare(self) -> None:
        """Load both models now, concurrently.

        :raises ConfigError: a model is missing or misconfigured.
        :raises ProviderError: a provider could not be started.
        """
        await prepare_all((self.llm, self.tts))

    async def aclose(self) -> None:
        await aclose_all((self.llm, self.tts))

    async def __aenter__(self) -> Pipeline:
        await self.prepare()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def speak(self, prompt: str | Sequence[Message], sink: AudioSink | None = None) -> Run:
        """Run one answer to the end and return it (raises what the run raised)."""
        async with self.run(prompt, sink) as run:
            pass
        return run

    @asynccontextmanager
    async def run(
        self, prompt: str | Sequence[Message], sink: AudioSink | None = None
    ) -> AsyncIterator[Run]:
        """Start one answer; iterate the yielded ``Run`` for its events as they happen.

        The run ends when the block's body is done and every stage has finished; leaving the
        block with an exception cancels the stages and aborts the sink.
        """
        messages = as_messages(prompt, self.system)
        sink = sink if sink is not None else NullSink()
        run = Run()
        events_send, events_recv = anyio.create_memory_object_stream[PipelineEvent](math.inf)
        run._events = events_recv
        text_send, text_recv = anyio.create_memory_object_stream[tuple[int, str]](64)
        queue = AudioQueue(self.queue_seconds)
        buffer = SentenceBuffer(self.chunking, first_chunk_min_words=self.first_chunk_min_words)
        pacer = Pacer(buffer, lambda: queue.seconds + sink.buffered_seconds(), lambda: self._rtf)
        await sink.start()  # a bad path or a missing device fails before any request
        with events_recv:
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(
                        self._write_text, messages, buffer, text_send, run, events_send, pacer
                    )
                    tg.start_soon(self._synthesize, text_recv, queue, run, events_send)
                    tg.start_soon(self._play, queue, sink, pacer, run, events_send)
                    yield run
            except BaseExceptionGroup as group:
                raise single_error(group) from None
        run.timeline.mark(tl.RUN_END)
        if run.error is not None:
            raise run.error

    def _fail(
        self,
        run: Run,
        events: MemoryObjectSendStream[PipelineEvent],
        stage: str,
        error: VoicepipeError,
    ) -> None:
        if run.error is None:
            run.error = error
        run.timeline.mark(tl.ERROR, stage=stage, message=str(error))
        events.send_nowait(StageFailed(stage, error))

    async def _write_text(
        self,
        messages: list[Message],
        buffer: SentenceBuffer,
        text_send: MemoryObjectSendStream[tuple[int, str]],
        run: Run,
        events: MemoryObjectSendStream[PipelineEvent],
        pacer: Pacer,
    ) -> None:
        """LLM deltas through the speech normalizer and the sentence buffer, to the TTS stage."""
        timeline = run.timeline
        normalizer = SpeechNormalizer(code_blocks=self.code_blocks) if self.normalize else None
        index = 0
        lock = anyio.Lock()  # the LLM loop and the pacer both release; chunks keep their order

        async def release(chunks: list[str]) -> None:
            nonlocal index
            async with lock:
                for text in chunks:
                    timeline.mark(tl.TEXT_CHUNK, index=index, text=text)
                    run.chunks.append(text)
                    events.send_nowait(TextChunk(index, text))
                    await text_send.send((index, text))
                    index += 1

        async with text_send:
            timeline.mark(tl.LLM_REQUEST, provider=self.llm.name)
            async with anyio.create_task_group() as pacing:
                if self.chunking == "adaptive":
                    pacing.start_soon(pacer.run, release)
                try:
                    async with aclosing(self.llm.stream(messages)) as deltas:
                        async for delta in deltas:
                            if not delta:
                                continue
                            timeline.mark(tl.LLM_DELTA, chars=len(delta))
                            run.answer += delta
                            events.send_nowait(TextDelta(delta))
                            speech = normalizer.feed(delta) if normalizer else delta
                            if speech:
                                await release(buffer.feed(speech))
                                pacer.notify()
                except VoicepipeError as exc:
                    # Keep what the model already said: it is flushed and spoken below.
                    self._fail(run, events, "llm", exc)
                pacing.cancel_scope.cancel()
            timeline.mark(tl.LLM_DONE)
            tail = normalizer.flush() if normalizer else ""
            if tail:
                await release(buffer.feed(tail))
            await release(buffer.flush())

    async def _synthesize(
        self,
        text_recv: MemoryObjectReceiveStream[tuple[int, str]],
        queue: AudioQueue,
        run: Run,
        events: MemoryObjectSendStream[PipelineEvent],
    ) -> None:
        """Synthesize chunks strictly in order, ahead of playback as far as the queue allows."""
        timeline = run.timeline
        failed = False
        try:
            async with text_recv:
                async for index, text in text_recv:
                    if failed:
                        continue  # drain the text stage; the run reports the TTS error
                    started = time.perf_counter()
                    timeline.mark(tl.TTS_REQUEST, index=index, chars=len(text))
                    seconds = 0.0
                    try:
                        async with aclosing(self.tts.synthesize(text, index)) as audio:
                            async for chunk in audio:
                                timeline.mark(tl.TTS_AUDIO, index=index, seconds=chunk.duration)
                                seconds += chunk.duration
                                await queue.put(chunk)
                    except ProviderError as exc:
                        failed = True
                        self._fail(run, events, "tts", exc)
                        continue
                    timeline.mark(tl.TTS_DONE, index=index, seconds=seconds)
                    if seconds > 0:
                        rtf = (time.perf_counter() - started) / seconds
                        self._rtf = 0.7 * self._rtf + 0.3 * rtf
        finally:
            queue.close_producer()

    async def _play(
        self,
        queue: AudioQueue,
        sink: AudioSink,
        pacer: Pacer,
        run: Run,
        events: MemoryObjectSendStream[PipelineEvent],
    ) -> None:
        """Hand audio to the sink in order; finish it at the end, abort it on failure."""
        timeline = run.timeline
        try:
            async for chunk in queue:
                timeline.mark(
                    tl.SINK_AUDIO,
                    index=chunk.text_index,
                    seconds=chunk.duration,
                    queued_s=queue.seconds,
                )
                await sink.write(chunk)
                run.audio_seconds += chunk.duration
                events.send_nowait(AudioPlayed(chunk.text_index, chunk.duration))
                pacer.notify()
            if run.error is not None and run.audio_seconds == 0:
                await sink.abort()  # a failed run with no audio leaves no empty file behind
            else:
                await sink.finish()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await sink.abort()
            raise
        finally:
            for started, seconds in sink.take_underruns():
                timeline.add(tl.Event(tl.UNDERRUN, started, {"seconds": seconds}))
            events.close()
