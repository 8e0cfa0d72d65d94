"""The pipeline's three stages, each a function over streams that can run (and be tested) alone.

    LLM deltas ─▶ text_stage ─TextChunk─▶ tts_stage ─AudioChunk─▶ AudioQueue ─▶ sink_stage ─▶ sink
                  (speech text,          (in order,              (bounded in
                   sentence buffer)       ahead of playback)      seconds)

Each stage records into a ``Run`` (timeline, answer, first error, events) and closes its
output when it ends, which ends the next stage's input. A provider error stops its stage
only: ``run.fail`` records it, the stage drains or closes, and what came before is kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from voicepipe import timeline as tl
from voicepipe.audio.queue import AudioQueue
from voicepipe.audio.sinks.base import AudioSink
from voicepipe.errors import ProviderError, VoicepipeError
from voicepipe.events import AudioPlayed, TextChunk, TextDelta
from voicepipe.run import Run
from voicepipe.text.sentences import SentenceBuffer
from voicepipe.text.speech import SpeechNormalizer
from voicepipe.tts.base import TTSEngine

__all__ = ["Pacer", "RealtimeFactor", "sink_stage", "text_stage", "tts_stage"]


class RealtimeFactor:
    """The TTS's measured synthesis time per second of audio, smoothed across chunks and runs."""

    def __init__(self, initial: float = 0.3) -> None:
        self.value = initial  # a cautious start until the first chunk is measured

    def observe(self, elapsed: float, audio_seconds: float) -> None:
        if audio_seconds > 0:
            self.value = 0.7 * self.value + 0.3 * (elapsed / audio_seconds)


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
        self._stopped = False

    def stop(self) -> None:
        """End :meth:`run` at its next wait. Never cancel it instead: text it has taken from
        the buffer and not yet sent would be lost."""
        self._stopped = True
        self._changed.set()

    def notify(self) -> None:
        """Audio or text moved: re-check the playout level."""
        self.buffer.set_playout(self.queued_seconds(), self.realtime_factor())
        self._changed.set()
        self._changed = anyio.Event()

    async def run(self, release: Callable[[list[str]], Awaitable[None]]) -> None:
        while not self._stopped:
            self.buffer.set_playout(self.queued_seconds(), self.realtime_factor())
            due = self.buffer.release_due()
            if due:
                await release(due)
                continue
            slack = self.buffer.held_slack()
            wait = math.inf if slack is None else max(slack, 0.005)
            with anyio.move_on_after(wait):
                await self._changed.wait()


async def text_stage(
    run: Run,
    deltas: AsyncGenerator[str, None],
    out: MemoryObjectSendStream[TextChunk],
    buffer: SentenceBuffer,
    *,
    normalizer: SpeechNormalizer | None = None,
    pacer: Pacer | None = None,
) -> None:
    """LLM deltas through the speech normalizer and the sentence buffer, out as text chunks.

    A failing LLM stream is recorded in ``run`` and what it wrote so far is still flushed.
    With a ``pacer`` (adaptive chunking) held text is also released as playback needs it.
    Closes ``out`` at the end.

    Raises only cancellation: an LLM failure (``VoicepipeError``) is recorded in ``run``.
    """
    timeline = run.timeline
    index = 0
    lock = anyio.Lock()  # the LLM loop and the pacer both release; chunks keep their order

    async def release(chunks: list[str]) -> None:
        nonlocal index
        async with lock:
            for text in chunks:
                timeline.mark(tl.TEXT_CHUNK, index=index, text=text)
                run.chunks.append(text)
                run.emit(TextChunk(index, text))
                await out.send(TextChunk(index, text))
                index += 1

    async with out:
        async with anyio.create_task_group() as pacing:
            if pacer is not None:
                pacing.start_soon(pacer.run, release)
            try:
                async with aclosing(deltas):  # an interrupted answer closes its HTTP stream
                    async for delta in deltas:
                        if not delta:
                            continue
                        timeline.mark(tl.LLM_DELTA, chars=len(delta))
                        run.answer += delta
                        run.emit(TextDelta(delta))
                        speech = normalizer.feed(delta) if normalizer else delta
                        if speech:
                            await release(buffer.feed(speech))
                            if pacer is not None:
                                pacer.notify()
            except VoicepipeError as exc:
                run.fail("llm", exc)  # what the model already said is flushed and spoken below
            if pacer is not None:
                pacer.stop()
        timeline.mark(tl.LLM_DONE)
        tail = normalizer.flush() if normalizer else ""
        if tail:
            await release(buffer.feed(tail))
        await release(buffer.flush())


async def tts_stage(
    run: Run,
    tts: TTSEngine,
    chunks: MemoryObjectReceiveStream[TextChunk],
    queue: AudioQueue,
    *,
    speed: RealtimeFactor | None = None,
) -> None:
    """Synthesize text chunks strictly in order, ahead of playback as far as ``queue`` allows.

    After a TTS failure (recorded in ``run``) the remaining text is drained unspoken, so the
    text stage never blocks. Closes the queue's producer side at the end.

    Raises only cancellation: a TTS failure (``ProviderError``) is recorded in ``run``.
    """
    timeline = run.timeline
    failed = False
    try:
        async with chunks:
            async for chunk in chunks:
                if failed:
                    continue
                started = time.perf_counter()
                timeline.mark(tl.TTS_REQUEST, index=chunk.index, chars=len(chunk.text))
                seconds = 0.0
                try:
                    async with aclosing(tts.synthesize(chunk.text, chunk.index)) as audio:
                        async for piece in audio:
                            timeline.mark(tl.TTS_AUDIO, index=chunk.index, seconds=piece.duration)
                            seconds += piece.duration
                            await queue.put(piece)
                except ProviderError as exc:
                    failed = True
                    run.fail("tts", exc)
                    continue
                timeline.mark(tl.TTS_DONE, index=chunk.index, seconds=seconds)
                if speed is not None:
                    speed.observe(time.perf_counter() - started, seconds)
    finally:
        queue.close_producer()


async def sink_stage(
    run: Run,
    queue: AudioQueue,
    sink: AudioSink,
    *,
    on_audio: Callable[[], None] | None = None,
) -> None:
    """Hand audio to the (started) sink in order; finish it at the end, abort it on failure.

    A run that failed before any audio aborts the sink, so no empty file is left behind.
    ``on_audio`` is called after each chunk (the pacer's cue).

    :raises AudioError: the sink failed (the sink is aborted first, so its file stays valid).
    """
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
            run.emit(AudioPlayed(chunk.text_index, chunk.duration, chunk))
            if on_audio is not None:
                on_audio()
        if run.error is not None and run.audio_seconds == 0:
            await sink.abort()
        else:
            await sink.finish()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await sink.abort()
        raise
    finally:
        for started, seconds in sink.take_underruns():
            timeline.add(tl.Event(tl.UNDERRUN, started, {"seconds": seconds}))
        # A sink that plays knows when the first sample reached the speaker (tl.AUDIBLE).
        take_audible = getattr(sink, "take_audible", None)
        if take_audible is not None and (audible := take_audible()) is not None:
            timeline.add(audible)
