"""A spoken conversation: history within a character budget, one pipeline run per turn, barge-in.

``Conversation(pipe)`` keeps the turns; ``async with conv.turn(text, sink) as turn`` is one
answer, spoken into ``sink``; ``turn.interrupt()`` (a keypress, Ctrl-C) cancels the run, which
stops every stage and aborts the sink. The history records only what was heard, marked where
it was cut, so the model knows where it was interrupted.

``VoiceInput`` is the user's voice: utterances from a ``Listener`` transcribed to text, and,
passed to ``turn(..., voice=...)``, barge-in (the user talking over an answer interrupts it).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import numpy as np

from voicepipe import timeline as tl
from voicepipe.audio.chunk import AudioChunk, Samples
from voicepipe.audio.sinks.base import AudioSink
from voicepipe.audio.sinks.files import WavFileSink
from voicepipe.audio.sinks.heard import HeardSink, heard_text
from voicepipe.errors import AudioError, ConfigError
from voicepipe.events import PipelineEvent
from voicepipe.llm.base import Message
from voicepipe.pipeline import Pipeline, Run
from voicepipe.voice.base import LISTEN_RATE, Transcriber
from voicepipe.voice.listener import ECHO_HOLDOFF_S, Listener

BARGE_IN = "chat.barge_in"  # the user interrupted (a key, Ctrl-C): the origin of the stop latency
SINK_ABORTED = "chat.sink_aborted"  # the sink's abort() returned: speech has stopped
# Where an answer was cut, as the model sees it next turn. A bracketed note reads well to big
# models, but small ones (SmolLM2) copy it into their answers; an ellipsis they do not.
CUT_MARK = "…"
NOTHING_HEARD = "…"
DEFAULT_BUDGET_CHARS = 4000  # SmolLM2's 2048-token context, less room for the answer


@dataclass(frozen=True)
class Exchange:
    """One turn as the history keeps it: what the user said and what the assistant got out."""

    user: str
    assistant: str
    interrupted: bool = False


class History:
    """The conversation so far, bounded by a character budget; the oldest turns go first."""

    def __init__(self, budget_chars: int = DEFAULT_BUDGET_CHARS, system: str | None = None):
        self.budget_chars = budget_chars
        self.system = system
        self.exchanges: list[Exchange] = []

    def add(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)
        self._trim(0)

    def reset(self) -> None:
        self.exchanges.clear()

    def _trim(self, reserve: int) -> None:
        """Drop the oldest exchanges until they and ``reserve`` more characters fit the budget."""
        used = sum(len(e.user) + len(e.assistant) for e in self.exchanges) + reserve
        while self.exchanges and used > self.budget_chars:
            dropped = self.exchanges.pop(0)
            used -= len(dropped.user) + len(dropped.assistant)

    def messages(self, user: str) -> list[Message]:
        """The messages for a new user turn: system prompt, the history that fits, the turn."""
        self._trim(len(user))
        messages: list[Message] = []
        if self.system:
            messages.append({"role": "system", "content": self.system})
        for e in self.exchanges:
            messages.append({"role": "user", "content": e.user})
            messages.append({"role": "assistant", "content": e.assistant})
        messages.append({"role": "user", "content": user})
        return messages

    def transcript(self) -> str:
        """The conversation as plain text, one ``role: text`` paragraph per message."""
        lines = [f"system: {self.system}"] if self.system else []
        for e in self.exchanges:
            note = " [interrupted]" if e.interrupted else ""
            lines += [f"user: {e.user}", f"assistant: {e.assistant}{note}"]
        return "\n\n".join(lines) + "\n"


class VoiceInput:
    """The user's voice in a conversation: utterances in, text out, and barge-in by voice.

    With ``barge_in`` the listener keeps hearing while an answer plays, with its threshold
    raised above the assistant's own voice, and the user speaking up interrupts the turn;
    without it the listener is paused while the assistant speaks (simple gating). After an
    answer, ``holdoff_s`` of the room's echo is ignored. With no ``transcriber`` it serves
    barge-in only (turns are typed).
    """

    def __init__(
        self,
        listener: Listener,
        transcriber: Transcriber | None = None,
        *,
        barge_in: bool = True,
        holdoff_s: float = ECHO_HOLDOFF_S,
    ) -> None:
        self.listener = listener
        self.transcriber = transcriber
        self.barge_in = barge_in
        self.holdoff_s = holdoff_s
        self.utterance_ended_at: float | None = None  # when the last utterance was complete

    async def next_text(self) -> str:
        """What the user says next ("" if nothing intelligible), transcribed as it ends.

        Transcription starts at the first pause in the utterance, while the detector is still
        waiting to be sure it has ended; if it has, that guess is the answer and only the
        rest of its run is waited for. If the user went on, the guess is dropped and the
        whole utterance is transcribed. The microphone is paused from the end of the
        utterance until the text is known.

        :raises ProviderError: the transcriber failed.
        """
        if self.transcriber is None:
            raise ConfigError("this voice input has no transcriber: it can only barge in")
        transcriber = self.transcriber
        guesses: list[tuple[Samples, anyio.Event, list[str | Exception]]] = []
        detector = self.listener.detector
        async with anyio.create_task_group() as tg:

            def on_pause(audio: Samples) -> None:
                done, box = anyio.Event(), list[str | Exception]()
                guesses.append((audio, done, box))

                async def guess() -> None:
                    try:
                        box.append(await transcriber.transcribe(audio, LISTEN_RATE))
                    except Exception as exc:  # raised below only if this guess is used
                        box.append(exc)
                    finally:
                        done.set()

                tg.start_soon(guess)

            detector.on_pause = on_pause
            try:
                utterance = await self.listener.next_utterance()
            finally:
                detector.on_pause = None
            self.utterance_ended_at = time.perf_counter()
            self.listener.pause()
            try:
                for audio, done, box in reversed(guesses):
                    # The utterance ends with less silence than a pause holds: a guess made in
                    # the final pause has the utterance as its prefix.
                    if len(utterance) <= len(audio) and np.array_equal(
                        audio[: len(utterance)], utterance
                    ):
                        await done.wait()
                        if isinstance(box[0], Exception):
                            raise box[0]
                        text = box[0]
                        break
                else:
                    text = await transcriber.transcribe(utterance, LISTEN_RATE)
            finally:
                tg.cancel_scope.cancel()
                self.listener.resume()
        return text

    @asynccontextmanager
    async def answering(self, turn: Turn) -> AsyncIterator[None]:
        """Around one answer: gate the microphone, or listen for the user barging in."""
        listener = self.listener
        if not self.barge_in:
            listener.pause()  # the assistant's voice is never transcribed
            try:
                yield
            finally:
                listener.resume(self.holdoff_s)
            return
        listener.hear_echo()

        async def watch() -> None:
            await listener.wait_for_speech()
            turn.interrupt()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                yield
                tg.cancel_scope.cancel()
        finally:
            # An utterance that interrupted stays in the listener, pre-roll included, to be
            # transcribed and answered as the next turn.
            listener.playback_ended(self.holdoff_s)

    def speech_started(self) -> None:
        """The answer's audio started: the listener measures the assistant's echo level now."""
        if self.barge_in:
            self.listener.playback_started()


@dataclass
class Turn:
    """One answer in a conversation: iterate it for the pipeline's events; ``interrupt()`` it."""

    user: str
    sink: HeardSink
    run: Run | None = None
    interrupted: bool = False
    heard: str = ""  # the speech text that was heard
    _scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    _interrupted_at: float | None = None

    def interrupt(self) -> None:
        """Stop the answer now: cancels the LLM and TTS, aborts the sink (barge-in)."""
        if self._interrupted_at is None:
            self._interrupted_at = time.perf_counter()
            self.interrupted = True
        self._scope.cancel()

    async def __aiter__(self) -> AsyncIterator[PipelineEvent]:
        if self.run is None:
            raise RuntimeError("iterate a Turn inside `async with conversation.turn(...)`")
        async for event in self.run:
            yield event

    @property
    def stop_latency_ms(self) -> float | None:
        """From the barge-in to the sink's abort returning, if the turn was interrupted."""
        if self._interrupted_at is None or self.sink.aborted_at is None:
            return None
        return (self.sink.aborted_at - self._interrupted_at) * 1000

    @property
    def audio(self) -> list[AudioChunk]:
        """The audio heard (everything handed to the sink, cut at the heard length)."""
        left = self.sink.heard_seconds if self.sink.heard_seconds is not None else math.inf
        out: list[AudioChunk] = []
        for chunk in self.sink.chunks:
            if left <= 0:
                break
            n = min(len(chunk.samples), round(left * chunk.sample_rate))
            out.append(AudioChunk(chunk.samples[:n], chunk.sample_rate, chunk.text_index))
            left -= chunk.duration
        return out


class Conversation:
    """Turns spoken through one pipeline (models stay loaded), with a bounded history."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        system: str | None = None,
        budget_chars: int = DEFAULT_BUDGET_CHARS,
    ) -> None:
        self.pipeline = pipeline
        self.history = History(budget_chars, system if system is not None else pipeline.system)
        self.last: Turn | None = None

    @asynccontextmanager
    async def turn(
        self,
        text: str,
        sink: AudioSink,
        *,
        on_speech: Callable[[str], None] | None = None,
        voice: VoiceInput | None = None,
    ) -> AsyncIterator[Turn]:
        """Answer ``text`` into ``sink``; on leaving, record what was heard in the history.

        ``on_speech(text)`` is called with each chunk's speech text as its audio starts to
        play, to show the answer in step with the voice. With ``voice``, the user speaking
        over the answer interrupts it (see ``VoiceInput``).

        :raises VoicepipeError: a provider or the sink failed (what was heard is recorded).
        """
        messages = self.history.messages(text)
        turn = Turn(text, HeardSink(sink))

        def started(index: int) -> None:
            if voice is not None:
                voice.speech_started()
            if on_speech is not None and turn.run is not None and index < len(turn.run.chunks):
                on_speech(turn.run.chunks[index])

        turn.sink.on_speech = started
        try:
            async with AsyncExitStack() as stack:
                if voice is not None:
                    await stack.enter_async_context(voice.answering(turn))
                with turn._scope:
                    async with self.pipeline.run(messages, turn.sink) as run:
                        turn.run = run
                        yield turn
        finally:
            self._record(turn)

    def _record(self, turn: Turn) -> None:
        run = turn.run
        if run is None:
            return
        if turn._interrupted_at is not None:
            run.timeline.add(tl.Event(BARGE_IN, turn._interrupted_at))
        if turn.sink.aborted_at is not None:
            run.timeline.add(tl.Event(SINK_ABORTED, turn.sink.aborted_at))
        if turn.sink.aborted_at is None and not turn.interrupted:
            # Finished: everything released was played (a failed provider stops early, but
            # what it said was still spoken), so the history keeps the text as written.
            turn.heard = " ".join(run.chunks)
            said = run.answer.strip() or turn.heard
        else:
            turn.interrupted = True
            heard_seconds = turn.sink.heard_seconds
            if heard_seconds is None:
                heard_seconds = turn.sink.written_seconds
            turn.heard, _ = heard_text(run.chunks, turn.sink.chunk_seconds, heard_seconds)
            said = f"{turn.heard}{CUT_MARK}" if turn.heard else NOTHING_HEARD
        self.history.add(Exchange(turn.user, said, interrupted=turn.interrupted))
        self.last = turn

    def reset(self) -> None:
        """Forget the conversation (the system prompt stays)."""
        self.history.reset()
        self.last = None

    async def save(self, text_path: str | Path, audio_path: str | Path | None = None) -> None:
        """Write the conversation as text, and the last answer's heard audio as a WAV file."""
        try:
            await anyio.Path(text_path).write_text(self.history.transcript(), encoding="utf-8")
        except OSError as exc:
            raise AudioError(f"cannot write {text_path}: {exc.strerror or exc}") from exc
        if audio_path is None:
            return
        wav = WavFileSink(audio_path, sample_rate=self.pipeline.tts.sample_rate)
        await wav.start()
        for chunk in self.last.audio if self.last is not None else []:
            await wav.write(chunk)
        await wav.finish()
