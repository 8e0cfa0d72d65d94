"""The terminal side of `voicepipe chat`: prompt, turns with barge-in, commands, a status line.

Standard input is read through the event loop (``anyio.wait_readable``), never by a blocking
thread; the terminal is in cbreak mode only while the assistant speaks, then restored. The
conversation itself (history, what was heard) is :class:`voicepipe.apps.chat.Conversation`.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

import anyio
from anyio.abc import TaskStatus

from voicepipe.apps.chat import Conversation, Turn, VoiceInput
from voicepipe.audio.sinks.base import AudioSink
from voicepipe.audio.sinks.null import NullSink
from voicepipe.cli.common import (
    err,
)
from voicepipe.cli.keyboard import Keyboard
from voicepipe.errors import VoicepipeError
from voicepipe.providers import TTS_PROVIDERS, make_tts
from voicepipe.tts.base import TTSEngine
from voicepipe.voice.base import Transcriber
from voicepipe.voice.listener import Listener

PROMPT = "you> "
HELP = (
    "commands: /reset (forget the conversation), /voice NAME (a Piper .onnx voice or a --tts "
    "spec), /save FILE (the conversation as text, the last answer as audio), /quit\n"
    "any key (or, with --listen, speaking up) while the assistant speaks interrupts it; "
    "Ctrl-C or Ctrl-D here leaves"
)


def voice_spec(name: str) -> str:
    """``/voice NAME``: a Piper voice file, or a full ``--tts`` spec."""
    provider = name.partition(":")[0].lower()
    if name.endswith(".onnx") or os.sep in name or provider not in TTS_PROVIDERS:
        return f"piper:{name}"
    return name


def save_paths(target: str) -> tuple[Path, Path]:
    """``/save FILE``: FILE.txt for the text and FILE.wav for the audio (FILE may end in either)."""
    path = Path(os.path.expanduser(target))
    base = path.with_suffix("") if path.suffix in (".txt", ".wav") else path
    return base.with_name(base.name + ".txt"), base.with_name(base.name + ".wav")


class ChatSession:
    """The terminal loop: prompt, turns with barge-in, commands, a status line."""

    def __init__(
        self,
        conversation: Conversation,
        keyboard: Keyboard,
        *,
        playback: bool,
        device: str | None = None,
        make_voice: Callable[[str], TTSEngine] | None = None,
        stats: bool = False,
        out: TextIO = sys.stdout,
        listener: Listener | None = None,
        transcriber: Transcriber | None = None,
        voice_barge_in: bool = True,
        on_turn: Callable[[Turn], Awaitable[int | None]] | None = None,
    ) -> None:
        self.voice = (
            None if listener is None else VoiceInput(listener, transcriber, barge_in=voice_barge_in)
        )
        self.conversation = conversation
        self.keyboard = keyboard
        self.playback = playback
        self.device = device
        self.make_voice = make_voice or make_tts
        self.stats = stats
        self.on_turn = on_turn  # e.g. record the turn as a trace; returns its id
        self.out = out
        self.turn: Turn | None = None
        self.turns = 0

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def make_sink(self) -> AudioSink:
        """A fresh sink per turn (a playback stream opens at the turn's first audio)."""
        if self.playback:
            from voicepipe.audio.sinks.playback import PlaybackSink

            # The echo canceller's reference: what this sink plays, and when.
            echo = None if self.voice is None else self.voice.listener.echo
            on_played = None if echo is None else echo.played.played
            return PlaybackSink(self.device, on_played=on_played)
        return NullSink()

    async def serve(self) -> int:
        """Run until /quit, Ctrl-D or Ctrl-C at the prompt; 0 either way."""
        async with anyio.create_task_group() as tg:
            await tg.start(self._watch_interrupts, tg.cancel_scope)
            await self._loop()
            tg.cancel_scope.cancel()
        return 0

    async def _watch_interrupts(
        self, session: anyio.CancelScope, *, task_status: TaskStatus[None]
    ) -> None:
        """Ctrl-C interrupts the answer being spoken; at the prompt it ends the session."""
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            task_status.started()
            async for _ in signals:
                if self.turn is not None:
                    self.turn.interrupt()
                else:
                    self.write("\n")
                    session.cancel()
                    return

    async def _loop(self) -> None:
        while True:
            self.write(PROMPT)
            if self.voice is not None:
                line = await self.listen_or_read(self.voice)
            else:
                line = await self.keyboard.read_line()
            if line is None:  # Ctrl-D
                self.write("\n")
                return
            text = line.strip()
            if not text:
                continue
            if text.startswith("/"):
                if not await self.command(text):
                    return
                continue
            await self.answer(text)

    async def listen_or_read(self, voice: VoiceInput) -> str | None:
        """The next typed line or transcribed utterance, whichever comes first.

        A transcription is echoed after the prompt, as if typed; one that heard nothing (or
        failed) is reported and the wait goes on.
        """
        while True:
            try:
                typed, text = await self._typed_or_spoken(voice)
            except VoicepipeError as exc:
                self.write("\n")
                err(f"error: {exc}")
                typed, text = False, ""
            if typed or text is None:
                return text
            if text:
                self.write(text + "\n")
                return text
            self.write("(heard nothing)\n" + PROMPT)

    async def _typed_or_spoken(self, voice: VoiceInput) -> tuple[bool, str | None]:
        """(True, a typed line, None at Ctrl-D) or (False, what was said), whichever is first."""
        got: list[tuple[bool, str | None]] = []
        async with anyio.create_task_group() as tg:

            async def typed() -> None:
                got.append((True, await self.keyboard.read_line()))
                tg.cancel_scope.cancel()

            async def spoken() -> None:
                got.append((False, await voice.next_text()))
                tg.cancel_scope.cancel()

            tg.start_soon(typed)
            tg.start_soon(spoken)
        return got[0]

    async def command(self, text: str) -> bool:
        """Run a /command; False means leave."""
        name, _, arg = text.partition(" ")
        arg = arg.strip()
        if name in ("/quit", "/exit"):
            return False
        if name == "/reset":
            self.conversation.reset()
            self.write("(conversation forgotten)\n")
        elif name == "/voice":
            if not arg:
                self.write("usage: /voice NAME (a Piper VOICE.onnx, or e.g. espeak:en-us)\n")
            else:
                await self.switch_voice(arg)
        elif name == "/save":
            if not arg:
                self.write("usage: /save FILE (writes FILE.txt and FILE.wav)\n")
            else:
                await self.save(arg)
        elif name == "/help":
            self.write(HELP + "\n")
        else:
            self.write(f"unknown command {name}; {HELP}\n")
        return True

    async def switch_voice(self, name: str) -> None:
        """Load the new voice first; keep the old one if it fails."""
        pipe = self.conversation.pipeline
        try:
            engine = self.make_voice(voice_spec(name))
            await engine.prepare()
        except VoicepipeError as exc:
            self.write(f"voice unchanged: {exc}\n")
            return
        old, pipe.tts = pipe.tts, engine
        await old.aclose()
        self.write(f"(voice: {voice_spec(name)})\n")

    async def save(self, target: str) -> None:
        """``/save FILE``: the conversation to FILE.txt, the last answer's audio to FILE.wav."""
        text_path, audio_path = save_paths(target)
        try:
            await self.conversation.save(text_path, audio_path)
        except VoicepipeError as exc:
            self.write(f"not saved: {exc}\n")
            return
        self.write(f"wrote {text_path} and {audio_path}\n")

    async def answer(self, text: str) -> None:
        """One spoken turn; any key, Ctrl-C or (with a listener) speech interrupts it.

        Provider errors keep the chat going. An utterance that interrupted is left in the
        listener, pre-roll included, to be transcribed and answered as the next turn.
        """
        spoken: list[str] = []

        def show(chunk: str) -> None:
            self.write((" " if spoken else "") + chunk)
            spoken.append(chunk)

        turn: Turn | None = None
        try:
            with self.keyboard.keys():
                async with anyio.create_task_group() as tg:
                    async with self.conversation.turn(
                        text, self.make_sink(), on_speech=show, voice=self.voice
                    ) as t:
                        turn = self.turn = t
                        if self.keyboard.is_tty:
                            tg.start_soon(self._watch_keys, t)
                        async for _ in t:
                            pass
                    tg.cancel_scope.cancel()
        except VoicepipeError as exc:
            self.write("\n")
            err(f"error: {exc}")
        finally:
            self.turn = None
        if turn is None:
            return
        if turn.interrupted:
            self.write(" [interrupted]\n")
        else:
            if turn.run is not None:
                for chunk in turn.run.chunks[len(spoken) :]:
                    show(chunk)  # text whose audio failed is still shown
            self.write("\n")
        self.turns += 1
        trace_id = None
        if self.on_turn is not None and turn.run is not None:
            try:
                trace_id = await self.on_turn(turn)
            except VoicepipeError as exc:
                err(f"error: {exc}")
        if self.stats and turn.run is not None:
            self.status(turn, trace_id)

    async def _watch_keys(self, turn: Turn) -> None:
        await self.keyboard.wait_key()
        turn.interrupt()

    def status(self, turn: Turn, trace_id: int | None = None) -> None:
        assert turn.run is not None
        m = turn.run.metrics

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f} ms"

        parts = [
            f"turn {self.turns}",
            f"TTFA {ms(m.ttfa_ms)}",
            f"first token {ms(m.ttft_ms)}",
            f"{m.audio_ms / 1000:.1f} s audio",
        ]
        if turn.stop_latency_ms is not None:
            parts.append(f"stopped in {turn.stop_latency_ms:.0f} ms")
        if trace_id is not None:
            parts.append(f"trace {trace_id}")
        print(f"[{', '.join(parts)}]", file=sys.stderr, flush=True)
