"""Utterances from the microphone, and barge-in by voice while the assistant speaks.

While the assistant speaks, the listener either keeps listening with a raised threshold
(barge-in by voice: the level of the assistant's own voice picked up by the microphone,
measured as playback starts, plus a margin) or is paused (simple gating). Given an echo
canceller, the listener hears the microphone with the assistant's voice taken out, and the
threshold follows what is being played (see ``VoiceActivity``).
"""

from __future__ import annotations

from collections import deque
from contextlib import aclosing

from voicepipe.audio.chunk import Samples
from voicepipe.errors import AudioError
from voicepipe.voice.base import LISTEN_RATE, SpeechClassifier
from voicepipe.voice.echo import EchoCanceller
from voicepipe.voice.microphone import Microphone
from voicepipe.voice.vad import UtteranceDetector, VoiceActivity

ECHO_HOLDOFF_S = 0.3  # after the assistant spoke, before listening again


class Listener:
    """Utterances from a microphone: ``await listener.next_utterance()``.

    While the assistant speaks, either ``pause()`` (simple gating: nothing is captured) or
    ``hear_echo()`` then, as its audio starts, ``playback_started()``: capture goes on with
    the detector's raised threshold, and ``wait_for_speech()`` returns as the user starts to
    talk over it (barge-in by voice). ``resume(holdoff_s)`` starts detection over, ignoring the
    first ``holdoff_s`` of audio captured (after an answer: the room's echo of its last words,
    ``ECHO_HOLDOFF_S``); ``playback_ended(holdoff_s)`` does the same unless the user is already
    speaking, whose utterance then goes on, pre-roll included, to ``next_utterance()``.
    """

    def __init__(
        self,
        microphone: Microphone,
        vad: VoiceActivity | None = None,
        classifier: SpeechClassifier | None = None,
        echo: EchoCanceller | None = None,
    ) -> None:
        self.microphone = microphone
        self.detector = UtteranceDetector(LISTEN_RATE, vad, classifier)
        self.echo = echo
        self._ignore = 0  # samples still to skip after resume
        self._ready: deque[Samples] = deque()

    def pause(self) -> None:
        self.microphone.paused = True

    def resume(self, holdoff_s: float = 0.0) -> None:
        self.microphone.discard()
        self.detector.reset()
        self.detector.end_echo()
        self._ready.clear()
        self._ignore = round(holdoff_s * LISTEN_RATE)
        self.microphone.paused = False

    def hear_echo(self) -> None:
        """An answer begins: keep listening (for a barge-in), from a clean start."""
        self.resume()

    def playback_started(self) -> None:
        """The answer's audio starts: measure its echo, then listen above it."""
        if not self.detector.hearing_echo:
            self.detector.begin_echo()

    def playback_ended(self, holdoff_s: float = 0.0) -> None:
        """The answer ended: back to the usual threshold, keeping an utterance under way."""
        if self.detector.in_utterance or self._ready:
            self.detector.end_echo()
            self.microphone.paused = False
        else:
            self.resume(holdoff_s)

    async def wait_for_speech(self) -> None:
        """Return as soon as an utterance starts (it stays in the detector, to be finished)."""
        async with aclosing(self.microphone.timed_blocks()) as blocks:
            async for at, block in blocks:
                self._take(block, at)
                if self._ready or self.detector.in_utterance:
                    return

    def _take(self, block: Samples, at: float) -> None:
        reference = None
        if self.echo is not None:
            block, reference = self.echo.process(block, at)
        if self._ignore:
            skip = min(self._ignore, len(block))
            self._ignore -= skip
            block = block[skip:]
            reference = None if reference is None else reference[skip:]
        self._ready.extend(self.detector.feed(block, reference))

    async def next_utterance(self) -> Samples:
        """Wait for the next complete utterance (16 kHz mono int16)."""
        if self._ready:
            return self._ready.popleft()
        async with aclosing(self.microphone.timed_blocks()) as blocks:
            async for at, block in blocks:
                self._take(block, at)
                if self._ready:
                    return self._ready.popleft()
        raise AudioError("the microphone stopped")  # pragma: no cover - blocks() never ends
