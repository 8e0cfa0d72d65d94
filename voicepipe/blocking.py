"""Blocking calls for scripts and notebooks: the async pipeline, on an event loop in a thread.

    import voicepipe

    voicepipe.say_sync("Hello there.", tts="espeak")     # speak text you have
    voicepipe.speak_sync("Why is the sky blue?")          # ask the embedded LLM and hear it
    with voicepipe.BlockingPipeline("local", "piper") as pipe:   # models stay loaded
        pipe.speak("Name three rivers.")
        chunks = pipe.audio("Count to three.")           # the audio, as a list of chunks

The event loop runs in a thread of its own (anyio's blocking portal), so these work the same
in a plain script and where a loop already runs in the caller's thread (Jupyter). Ctrl-C
during a call cancels the run, as in the CLI (playback stops, a file stays valid), waits for
that to finish, and is raised.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.base import AudioSink
from voicepipe.llm.base import Message, TokenSource
from voicepipe.pipeline import Pipeline, SpeechText
from voicepipe.providers import make_llm, make_tts
from voicepipe.run import Run
from voicepipe.tts.base import TTSEngine

__all__ = ["BlockingPipeline", "say_sync", "speak_sync"]

T = TypeVar("T")

# How long Ctrl-C waits for a cancelled run to stop its stages and close its sink.
_CANCEL_WAIT_S = 10.0


class BlockingPipeline:
    """A :class:`Pipeline` with blocking methods; the models load once, in ``__init__``.

    ``llm`` and ``tts`` are specs as on the command line (``"openai:gpt-4o-mini"``,
    ``"espeak:en-gb"``) or built objects (``make_tts("piper", speed=1.2)``); ``pipeline``
    options (``chunking``, ``system``...) go to :class:`Pipeline`. Close it (``close()`` or
    ``with``) to release the models and the loop's thread.
    """

    def __init__(
        self,
        llm: str | TokenSource = "local",
        tts: str | TTSEngine = "piper",
        *,
        backend: str = "asyncio",
        **pipeline: Any,
    ) -> None:
        source = make_llm(llm) if isinstance(llm, str) else llm
        engine = make_tts(tts) if isinstance(tts, str) else tts
        self.pipeline = Pipeline(source, engine, **pipeline)
        portal_cm = start_blocking_portal(backend)
        self._portal = portal_cm.__enter__()
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = portal_cm
        try:
            self._call(self.pipeline.prepare)
        except BaseException:
            self.close()
            raise

    def _call(self, func: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await func(*args)`` on the loop; Ctrl-C cancels it there and waits for the end."""
        done = threading.Event()

        async def call() -> T:
            try:
                return await func(*args)
            finally:
                done.set()

        future = self._portal.start_task_soon(call)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()  # cancels the task: every stage stops, the sink is aborted
            done.wait(_CANCEL_WAIT_S)
            raise

    def speak(self, prompt: str | Sequence[Message], sink: AudioSink | None = None) -> Run:
        """Answer ``prompt`` (on the speakers without a ``sink``) and return the run."""
        return self._call(self.pipeline.speak, prompt, sink)

    def say(self, text: SpeechText, sink: AudioSink | None = None) -> Run:
        """Speak ``text`` as is, skipping the LLM (on the speakers without a ``sink``)."""
        return self._call(self.pipeline.say, text, sink)

    def audio(
        self, prompt: str | Sequence[Message] | None = None, *, text: str | None = None
    ) -> list[AudioChunk]:
        """The whole answer to ``prompt`` (or ``text`` spoken as is) as audio chunks."""

        async def collect() -> list[AudioChunk]:
            return [chunk async for chunk in self.pipeline.audio(prompt, text=text)]

        return self._call(collect)

    def close(self) -> None:
        """Release the models and stop the loop's thread (again: nothing)."""
        if self._portal_cm is None:
            return
        try:
            self._call(self.pipeline.aclose)
        finally:
            cm, self._portal_cm = self._portal_cm, None
            cm.__exit__(None, None, None)

    def __enter__(self) -> BlockingPipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def speak_sync(
    prompt: str | Sequence[Message],
    *,
    llm: str | TokenSource = "local",
    tts: str | TTSEngine = "piper",
    sink: AudioSink | None = None,
    **pipeline: Any,
) -> Run:
    """Load the models, answer ``prompt`` aloud (or into ``sink``), release them; blocking.

    For one answer; :class:`BlockingPipeline` keeps the models loaded across many.
    """
    with BlockingPipeline(llm, tts, **pipeline) as pipe:
        return pipe.speak(prompt, sink)


def say_sync(
    text: SpeechText,
    *,
    tts: str | TTSEngine = "piper",
    sink: AudioSink | None = None,
    **pipeline: Any,
) -> Run:
    """Speak ``text`` as is (no LLM) on the speakers, or into ``sink``; blocking."""
    with BlockingPipeline("text", tts, **pipeline) as pipe:
        return pipe.say(text, sink)
