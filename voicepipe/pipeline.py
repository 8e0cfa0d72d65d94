"""The pipeline: LLM deltas -> text stage -> TTS stage -> bounded queue -> sink stage.

``Pipeline`` only wires the stages (``voicepipe.stages``) with memory object streams and owns
them in one anyio task group. Cancelling it (Ctrl-C, a new turn, an error) stops every stage,
closes the HTTP streams and silences playback. A provider that fails mid-answer stops its
stage only: what was already released is still spoken or written, then the run raises it.
"""

from __future__ import annotations

import math
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Sequence,
)
from contextlib import asynccontextmanager
from typing import Literal

import anyio
import anyio.lowlevel

from voicepipe import timeline as tl
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.queue import AudioQueue
from voicepipe.audio.sinks.base import AudioSink
from voicepipe.audio.sinks.null import NullSink
from voicepipe.errors import ConfigError
from voicepipe.events import AudioPlayed, PipelineEvent, TextChunk
from voicepipe.lifecycle import aclose_all, prepare_all
from voicepipe.llm.base import Message, TokenSource
from voicepipe.run import Run
from voicepipe.stages import Pacer, RealtimeFactor, sink_stage, text_stage, tts_stage
from voicepipe.taskgroups import single_error
from voicepipe.text.lexicon import Lexicon
from voicepipe.text.sentences import Chunking, SentenceBuffer, check_chunking
from voicepipe.text.speech import SpeechNormalizer
from voicepipe.tts.base import TTSEngine

__all__ = ["Pipeline", "Run", "SpeechText", "as_messages"]

# Text to speak as is: a string, or its pieces as they come.
SpeechText = str | Iterable[str] | AsyncIterable[str]


def _speakers() -> AudioSink:
    """The default output device: where ``speak`` and ``say`` go without a sink."""
    from voicepipe.audio.sinks.playback import PlaybackSink

    return PlaybackSink()


async def _text_deltas(text: SpeechText) -> AsyncGenerator[str, None]:
    """``text`` as a token stream: a string whole, or each piece as its source yields it.

    A source that is an async generator is closed with the run (as an LLM stream is).
    """
    if isinstance(text, str):
        yield text
        return
    if isinstance(text, AsyncIterable):
        source = aiter(text)
        try:
            async for piece in source:
                yield _piece(piece)
        finally:
            if isinstance(source, AsyncGenerator):
                await source.aclose()
        return
    for piece in text:
        yield _piece(piece)
        await anyio.lowlevel.checkpoint()  # a long list must not starve the other stages


def _check_text(text: SpeechText) -> None:
    if isinstance(text, str) and not text.strip():
        raise ConfigError("nothing to say: the text is empty")
    if not isinstance(text, str | Iterable | AsyncIterable):
        raise ConfigError(f"say() speaks text: got {type(text).__name__}")


def _piece(piece: object) -> str:
    if not isinstance(piece, str):
        raise ConfigError(f"say() speaks text: got a piece of type {type(piece).__name__}")
    return piece


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
        lexicon: Lexicon | None = None,
    ) -> None:
        self.llm = llm
        self.tts = tts
        self.chunking: Chunking = check_chunking(chunking)
        self.system = system
        self.normalize = normalize
        self.code_blocks: Literal["skip", "mention"] = code_blocks
        self.queue_seconds = queue_seconds
        self.first_chunk_min_words = first_chunk_min_words
        self.lexicon = lexicon  # how names and jargon are said (voicepipe.text.lexicon)
        self.speed = RealtimeFactor()  # the TTS's, learned across runs

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
        """Answer ``prompt`` to the end and return the run (raises what the run raised).

        Without a ``sink`` the answer is played on the default output device
        (:class:`PlaybackSink`): a person who asks to be spoken to expects to hear it.
        """
        if sink is None:
            as_messages(prompt, self.system)  # an empty prompt fails before a device opens
            sink = _speakers()
        async with self.run(prompt, sink, events=False) as run:
            pass
        return run

    async def say(self, text: SpeechText, sink: AudioSink | None = None) -> Run:
        """Speak text you already have, skipping the LLM, and return the run.

        ``text`` is a string, or its pieces as they come (an iterable or async iterable of
        strings, e.g. your own model's stream); it goes through the same speech normalizer,
        chunking, TTS and sink as an answer. Without a ``sink`` it is played on the speakers.
        """
        if sink is None:
            _check_text(text)  # empty text fails before a device opens
            sink = _speakers()
        async with self.run_text(text, sink, events=False) as run:
            pass
        return run

    @asynccontextmanager
    async def run_text(
        self, text: SpeechText, sink: AudioSink | None = None, *, events: bool = True
    ) -> AsyncIterator[Run]:
        """Like :meth:`run`, for text you already have (see :meth:`say`): no LLM request.

        The timeline starts where an LLM request would, so TTFA reads the same.

        :raises ConfigError: an empty string, or a piece that is not a string.
        """
        _check_text(text)
        async with self._start(lambda: _text_deltas(text), "text", sink, events) as run:
            yield run

    async def audio(
        self, prompt: str | Sequence[Message] | None = None, *, text: SpeechText | None = None
    ) -> AsyncGenerator[AudioChunk, None]:
        """The answer to ``prompt`` (or ``text`` spoken as is) as audio chunks, in order.

        Chunks come as fast as the TTS makes them, not at playback speed; those not taken
        yet wait in memory. To stop early, iterate inside ``contextlib.aclosing(...)`` so
        the run is cancelled in the task that started it (as anyio and trio require).

        :raises ConfigError: neither or both of ``prompt`` and ``text``, or an empty one.
        :raises VoicepipeError: what the run raised, after the audio made before it.
        """
        sink = NullSink(realtime=False)
        if prompt is not None and text is None:
            started = self.run(prompt, sink)
        elif text is not None and prompt is None:
            started = self.run_text(text, sink)
        else:
            raise ConfigError("pass a prompt for the LLM, or text= to speak as is: one of them")
        async with started as run:
            async for event in run:
                if isinstance(event, AudioPlayed):
                    yield event.chunk

    @asynccontextmanager
    async def run(
        self,
        prompt: str | Sequence[Message],
        sink: AudioSink | None = None,
        *,
        events: bool = True,
    ) -> AsyncIterator[Run]:
        """Start one answer; iterate the yielded ``Run`` for its events as they happen.

        The run ends when the block's body is done and every stage has finished; leaving the
        block with an exception cancels the stages and aborts the sink. With ``events=False``
        no events are kept (they hold the audio until iterated): for callers that never
        iterate, as ``speak`` does. Without a ``sink`` the audio is discarded (``NullSink``):
        iterate the events for it, or use :meth:`speak` to hear it.

        :raises ConfigError: an empty prompt.
        :raises VoicepipeError: the first stage failure, after what came before it was spoken.
        """
        messages = as_messages(prompt, self.system)
        async with self._start(
            lambda: self.llm.stream(messages), self.llm.name, sink, events
        ) as run:
            yield run

    @asynccontextmanager
    async def _start(
        self,
        deltas: Callable[[], AsyncGenerator[str, None]],
        provider: str,
        sink: AudioSink | None,
        events: bool,
    ) -> AsyncIterator[Run]:
        """Wire the stages for one run whose text comes from ``deltas()``, called once the
        request is stamped on the timeline."""
        sink = sink if sink is not None else NullSink()
        run = Run()
        # Events (AudioPlayed carries the audio) wait in memory until iterated, so a caller
        # that never iterates turns them off: ``speak`` does.
        events_send, events_recv = anyio.create_memory_object_stream[PipelineEvent](math.inf)
        if events:
            run._events, run._emit = events_recv, events_send
        text_send, text_recv = anyio.create_memory_object_stream[TextChunk](64)
        queue = AudioQueue(self.queue_seconds)
        buffer = SentenceBuffer(
            self.chunking,
            first_chunk_min_words=self.first_chunk_min_words,
            chars_per_second=getattr(self.tts, "chars_per_second", None),  # the voice's, if known
        )
        pacer = None
        if self.chunking == "adaptive":
            pacer = Pacer(
                buffer, lambda: queue.seconds + sink.buffered_seconds(), lambda: self.speed.value
            )
        normalizer = (
            SpeechNormalizer(code_blocks=self.code_blocks, lexicon=self.lexicon)
            if self.normalize
            else None
        )

        async def stages() -> None:
            async with events_send:  # the caller's iteration ends when every stage has
                async with anyio.create_task_group() as tg:
                    tl.bind(run.timeline)  # providers stamp it too (a fallback's switch)
                    run.timeline.mark(tl.LLM_REQUEST, provider=provider)
                    stream = deltas()
                    tg.start_soon(
                        lambda: text_stage(
                            run, stream, text_send, buffer, normalizer=normalizer, pacer=pacer
                        )
                    )
                    tg.start_soon(
                        lambda: tts_stage(run, self.tts, text_recv, queue, speed=self.speed)
                    )
                    tg.start_soon(
                        lambda: sink_stage(
                            run, queue, sink, on_audio=pacer.notify if pacer else None
                        )
                    )

        await sink.start()  # a bad path or a missing device fails before any request
        with events_recv:
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(stages)
                    yield run
            except BaseExceptionGroup as group:
                raise single_error(group) from None
        run.timeline.mark(tl.RUN_END)
        if run.error is not None:
            raise run.error
