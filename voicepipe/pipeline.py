"""The pipeline: LLM deltas -> text stage -> TTS stage -> bounded queue -> sink stage.

``Pipeline`` only wires the stages (``voicepipe.stages``) with memory object streams and owns
them in one anyio task group. Cancelling it (Ctrl-C, a new turn, an error) stops every stage,
closes the HTTP streams and silences playback. A provider that fails mid-answer stops its
stage only: what was already released is still spoken or written, then the run raises it.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Literal

import anyio

from voicepipe import timeline as tl
from voicepipe.audio.queue import AudioQueue
from voicepipe.audio.sinks.base import AudioSink
from voicepipe.audio.sinks.null import NullSink
from voicepipe.errors import ConfigError
from voicepipe.events import PipelineEvent, TextChunk
from voicepipe.lifecycle import aclose_all, prepare_all
from voicepipe.llm.base import Message, TokenSource
from voicepipe.run import Run
from voicepipe.stages import Pacer, RealtimeFactor, sink_stage, text_stage, tts_stage
from voicepipe.taskgroups import single_error
from voicepipe.text.sentences import Chunking, SentenceBuffer, check_chunking
from voicepipe.text.speech import SpeechNormalizer
from voicepipe.tts.base import TTSEngine

__all__ = ["Pipeline", "Run", "as_messages"]


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
    ) -> None:
        self.llm = llm
        self.tts = tts
        self.chunking: Chunking = check_chunking(chunking)
        self.system = system
        self.normalize = normalize
        self.code_blocks: Literal["skip", "mention"] = code_blocks
        self.queue_seconds = queue_seconds
        self.first_chunk_min_words = first_chunk_min_words
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
        """Run one answer to the end and return it (raises what the run raised)."""
        async with self.run(prompt, sink, events=False) as run:
            pass
        return run

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
        iterate, as ``speak`` does.

        :raises ConfigError: an empty prompt.
        :raises VoicepipeError: the first stage failure, after what came before it was spoken.
        """
        messages = as_messages(prompt, self.system)
        sink = sink if sink is not None else NullSink()
        run = Run()
        # Events (AudioPlayed carries the audio) wait in memory until iterated, so a caller
        # that never iterates turns them off: ``speak`` does.
        events_send, events_recv = anyio.create_memory_object_stream[PipelineEvent](math.inf)
        if events:
            run._events, run._emit = events_recv, events_send
        text_send, text_recv = anyio.create_memory_object_stream[TextChunk](64)
        queue = AudioQueue(self.queue_seconds)
        buffer = SentenceBuffer(self.chunking, first_chunk_min_words=self.first_chunk_min_words)
        pacer = None
        if self.chunking == "adaptive":
            pacer = Pacer(
                buffer, lambda: queue.seconds + sink.buffered_seconds(), lambda: self.speed.value
            )
        normalizer = SpeechNormalizer(code_blocks=self.code_blocks) if self.normalize else None

        async def stages() -> None:
            async with events_send:  # the caller's iteration ends when every stage has
                async with anyio.create_task_group() as tg:
                    run.timeline.mark(tl.LLM_REQUEST, provider=self.llm.name)
                    deltas = self.llm.stream(messages)
                    tg.start_soon(
                        lambda: text_stage(
                            run, deltas, text_send, buffer, normalizer=normalizer, pacer=pacer
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
