"""Conversation: the history budget, what-was-heard accounting, barge-in, /save; the CLI's parts."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import termios
import time
import wave
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path

import anyio
import anyio.lowlevel
import numpy as np
import pytest

from tests import ROOT_DIR, run_script
from tests.audio.conftest import PacedDevice
from tests.engines import ToneTTS
from tests.voice.test_listener import ECHO, RATE, tone
from tests.voice.test_listener import capture as talk
from voicepipe.apps.chat import BARGE_IN, CUT_MARK, SINK_ABORTED, Conversation, Exchange, History
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.heard import heard_text
from voicepipe.audio.sinks.null import NullSink
from voicepipe.cli.chat_terminal import ChatSession, save_paths, voice_spec
from voicepipe.cli.keyboard import Keyboard
from voicepipe.events import AudioPlayed
from voicepipe.lifecycle import Lifecycle
from voicepipe.llm.base import Message
from voicepipe.llm.text import TextSource
from voicepipe.pipeline import Pipeline
from voicepipe.voice.listener import Listener
from voicepipe.voice.microphone import Microphone

ANSWER = (
    "The sky looks blue because of scattering. Short wavelengths scatter more than long ones. "
    "At sunset the light travels farther, so reds win. That is the whole story, really."
)
LOUD = tone(0.8, amplitude=16000, freq=500)  # the user, 18 dB above the assistant's ECHO


class ScriptedLLM(Lifecycle):
    """Answers with ``answer(messages)`` word by word; records requests and closes."""

    name = "scripted"

    def __init__(self, answer: Callable[[Sequence[Message]], str], interval: float = 0.0) -> None:
        self.answer = answer
        self.interval = interval
        self.received: list[list[Message]] = []
        self.closed = 0

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        self.received.append(list(messages))
        try:
            for word in re.findall(r"\s*\S+", self.answer(messages)):
                if self.interval:
                    await anyio.sleep(self.interval)
                else:
                    await anyio.lowlevel.checkpoint()
                yield word
        finally:
            self.closed += 1


class DeviceSink(NullSink):
    """A device whose buffer is full: ``write`` blocks after ``accept`` chunks until aborted.

    ``frames_played`` and ``sample_rate`` are what a playback sink exposes; the test sets them.
    """

    def __init__(self, accept: int) -> None:
        super().__init__(realtime=False)
        self.accept = accept
        self.written: list[AudioChunk] = []
        self.full = anyio.Event()
        self.aborted = False
        self.frames_played = 0
        self.sample_rate = 16000

    async def write(self, chunk: AudioChunk) -> None:
        self.written.append(chunk)
        if len(self.written) >= self.accept:
            self.full.set()
            await anyio.sleep_forever()

    async def abort(self) -> None:
        self.aborted = True


class ClockDevice(NullSink):
    """A device that plays on a real-time clock and holds what it has not played yet.

    ``write`` waits while more than ``max_buffer_s`` is held: backpressure, as a playback
    sink's (the wait is the device playing, not a synchronisation). ``abort`` drops what is
    held, so nothing more plays; ``full`` is set once the buffer has filled.
    """

    def __init__(self, max_buffer_s: float = 0.3) -> None:
        super().__init__(realtime=True)
        self.max_buffer_s = max_buffer_s
        self.full = anyio.Event()
        self.dropped_s: float | None = None  # held and never played: cut by abort()
        self.stopped_at: float | None = None

    async def write(self, chunk: AudioChunk) -> None:
        await super().write(chunk)
        excess = self.buffered_seconds() - self.max_buffer_s
        if excess > 0:
            self.full.set()
            await anyio.sleep(excess)

    async def abort(self) -> None:
        self.dropped_s = self.buffered_seconds()
        self.stopped_at = time.perf_counter()

    def buffered_seconds(self) -> float:
        return 0.0 if self.stopped_at is not None else super().buffered_seconds()


# -- history -------------------------------------------------------------------------------


def test_history_messages_put_system_first_and_the_new_turn_last() -> None:
    history = History(1000, system="Be brief.")
    history.add(Exchange("Hi.", "Hello!"))
    assert history.messages("And now?") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi."},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "And now?"},
    ]


def test_history_drops_the_oldest_turns_to_fit_the_budget() -> None:
    history = History(budget_chars=50)
    for n in range(5):
        history.add(Exchange(f"question {n}", f"answer {n}"))  # 20 characters each
    assert [e.user for e in history.exchanges] == ["question 3", "question 4"]
    messages = history.messages("x" * 15)  # 15 more: only the newest turn still fits
    assert [m["content"] for m in messages] == ["question 4", "answer 4", "x" * 15]


def test_history_keeps_a_new_turn_longer_than_the_budget() -> None:
    history = History(budget_chars=10)
    history.add(Exchange("a", "b"))
    assert history.messages("y" * 40) == [{"role": "user", "content": "y" * 40}]


def test_history_reset_keeps_the_system_prompt() -> None:
    history = History(system="persona")
    history.add(Exchange("a", "b"))
    history.reset()
    assert history.messages("c")[0] == {"role": "system", "content": "persona"}
    assert len(history.messages("c")) == 2


# -- what was heard ------------------------------------------------------------------------

CHUNKS = ["One two three.", "Four five six seven eight nine.", "Ten."]
SECONDS = {0: 1.0, 1: 2.0, 2: 0.5}


@pytest.mark.parametrize(
    ("heard_seconds", "expected", "complete"),
    [
        (0.0, "", False),
        (0.5, "One", False),  # half of chunk 0: cut back to a word boundary
        (1.0, "One two three.", False),
        (2.0, "One two three. Four five six", False),  # half of chunk 1
        (3.5, "One two three. Four five six seven eight nine. Ten.", True),
        (9.0, "One two three. Four five six seven eight nine. Ten.", True),
    ],
)
def test_heard_text_counts_whole_chunks_then_part_of_the_cut_one(
    heard_seconds: float, expected: str, complete: bool
) -> None:
    assert heard_text(CHUNKS, SECONDS, heard_seconds) == (expected, complete)


def test_heard_text_stops_at_a_chunk_that_never_played() -> None:
    assert heard_text(CHUNKS, {0: 1.0}, 5.0) == ("One two three.", False)


def test_heard_text_passes_a_silent_chunk_when_later_audio_played() -> None:
    chunks = ["One.", "...", "Two."]
    assert heard_text(chunks, {0: 1.0, 2: 1.0}, 2.0) == ("One. ... Two.", True)


# -- turns ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_turn_sees_the_history_and_records_the_whole_answer() -> None:
    llm = ScriptedLLM(lambda messages: f"You said {messages[-1]['content']}")
    with anyio.fail_after(10):
        async with Pipeline(llm, ToneTTS()) as pipe:
            conv = Conversation(pipe, system="persona")
            await _speak(conv, "apples.")
            await _speak(conv, "pears.")
    assert llm.received[1] == [
        {"role": "system", "content": "persona"},
        {"role": "user", "content": "apples."},
        {"role": "assistant", "content": "You said apples."},
        {"role": "user", "content": "pears."},
    ]
    assert conv.history.exchanges[-1] == Exchange("pears.", "You said pears.")
    assert conv.last is not None and not conv.last.interrupted


async def _speak(conv: Conversation, text: str) -> None:
    async with conv.turn(text, NullSink()) as turn:
        async for _ in turn:
            pass


@pytest.mark.anyio
async def test_barge_in_stops_every_stage_promptly_and_leaves_no_task() -> None:
    llm = ScriptedLLM(lambda _: ANSWER, interval=0.02)
    tts = ToneTTS(delay=0.01)
    sink = ClockDevice(max_buffer_s=0.3)
    with anyio.fail_after(10):
        tasks_before = len(anyio.get_running_tasks())
        async with Pipeline(llm, tts) as pipe:
            conv = Conversation(pipe)
            async with conv.turn("Why?", sink) as turn:
                await sink.full.wait()  # the device is playing and its buffer is full
                turn.interrupt()
                async for _ in turn:
                    pass  # not reached: interrupting cancels this block too
        assert len(anyio.get_running_tasks()) == tasks_before
    # The cut dropped the audio the device held: speech stopped when abort() returned.
    assert sink.dropped_s is not None and sink.dropped_s > 0.2
    assert sink.buffered_seconds() == 0
    assert llm.closed == 1  # the LLM stream was closed mid-answer
    assert tts.closed == len(tts.requests)  # and every synthesis too
    assert turn.run is not None
    assert turn.run.answer != ANSWER  # the LLM did not get to finish
    names = [e.name for e in turn.run.timeline.events]
    assert names.index(BARGE_IN) < names.index(SINK_ABORTED)
    assert turn.stop_latency_ms is not None and turn.stop_latency_ms < 50
    assert turn.heard and ANSWER.startswith(turn.heard)  # what played before the cut


BARGE_IN_ON_A_DEVICE = """
import json, sys, time
import anyio
from tests.engines import ToneTTS
from voicepipe import AudioPlayed, Conversation, Pipeline, PlaybackSink
from voicepipe.llm.text import TextSource

ANSWER = " ".join(f"Sentence {n} of an answer that goes on." for n in range(10))  # 7 s

async def main():
    tts = ToneTTS(48000, seconds_per_word=0.1)
    with anyio.fail_after(30):
        async with Pipeline(TextSource(0), tts, chunking="sentence") as pipe:
            async with Conversation(pipe).turn(ANSWER, PlaybackSink()) as turn:
                written = 0.0
                async for event in turn:
                    if isinstance(event, AudioPlayed):
                        written += event.seconds
                        if written >= 1.5:  # 0.5 s is buffered at most: 1 s has played
                            interrupted = time.time()
                            turn.interrupt()
    print(json.dumps({"interrupted": interrupted, "stop_latency_ms": turn.stop_latency_ms}))

anyio.run(main, backend=sys.argv[1])
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_barge_in_silences_the_speakers_within_50_ms(
    paced_device: PacedDevice, backend: str
) -> None:
    # A chat answer through the real PlaybackSink into a device that plays in real time: the
    # figure is when the device fell silent, not when a method returned.
    report = run_script(BARGE_IN_ON_A_DEVICE, backend, env=paced_device.env)
    times, frames = paced_device.played()
    loud = np.flatnonzero(np.abs(frames) > 100)
    assert len(loud) > 48000 * 0.9  # about a second played before the barge-in
    silent_after_ms = (times[loud[-1]] - report["interrupted"]) * 1000
    stopped_ms = report["stop_latency_ms"]
    print(f"barge-in: stopped in {stopped_ms:.1f} ms, silent after {silent_after_ms:.1f} ms")
    assert silent_after_ms < 50, f"sound went on {silent_after_ms:.0f} ms after the barge-in"
    assert stopped_ms < 50


@pytest.mark.anyio
async def test_barge_in_records_only_what_the_device_played() -> None:
    # Two chunks reach the device; it has played chunk 0 and 0.35 s of chunk 1's 0.6 s when cut.
    llm = ScriptedLLM(lambda _: "One two three four. Five six seven eight nine ten. Eleven.")
    tts = ToneTTS(16000, seconds_per_word=0.1, pieces=1)
    sink = DeviceSink(accept=2)
    with anyio.fail_after(10):
        async with Pipeline(llm, tts, chunking="sentence") as pipe:
            conv = Conversation(pipe)
            async with conv.turn("Count.", sink) as turn:
                await sink.full.wait()
                sink.frames_played = int(16000 * (0.4 + 0.35))
                turn.interrupt()
    assert [c.text_index for c in sink.written] == [0, 1]
    assert turn.interrupted
    assert turn.heard == "One two three four. Five six seven"
    assert conv.history.exchanges[-1].assistant == turn.heard + CUT_MARK
    assert conv.history.transcript().endswith(f"{turn.heard}{CUT_MARK} [interrupted]\n")
    assert sum(c.duration for c in turn.audio) == pytest.approx(0.75)


@pytest.mark.anyio
async def test_an_interruption_before_any_audio_is_noted_in_the_history() -> None:
    llm = ScriptedLLM(lambda _: ANSWER, interval=10)
    with anyio.fail_after(10):
        async with Pipeline(llm, ToneTTS()) as pipe:
            conv = Conversation(pipe)
            async with conv.turn("Why?", NullSink()) as turn:
                await anyio.wait_all_tasks_blocked()
                turn.interrupt()
    assert turn.heard == ""
    assert conv.history.exchanges[-1] == Exchange("Why?", "…", interrupted=True)


@pytest.mark.anyio
async def test_a_null_sink_hears_what_its_clock_has_played() -> None:
    # The null sink plays on paper: after the first chunk, only a moment of it has "played".
    llm = ScriptedLLM(lambda _: ANSWER)
    tts = ToneTTS(seconds_per_word=0.5)
    with anyio.fail_after(10):
        async with Pipeline(llm, tts, chunking="sentence") as pipe:
            conv = Conversation(pipe)
            async with conv.turn("Why?", NullSink()) as turn:
                async for event in turn:
                    if isinstance(event, AudioPlayed):
                        turn.interrupt()
    first_chunk = turn.run.chunks[0] if turn.run else ""
    assert turn.heard != first_chunk and first_chunk.startswith(turn.heard)
    assert conv.history.exchanges[-1].interrupted


@pytest.mark.anyio
async def test_save_writes_the_transcript_and_the_last_answer(tmp_path: Path) -> None:
    tts = ToneTTS(16000, seconds_per_word=0.05)
    with anyio.fail_after(10):
        async with Pipeline(TextSource(0), tts) as pipe:
            conv = Conversation(pipe, system="persona")
            await _speak(conv, "Hello there.")
            await _speak(conv, "Four words right here.")
            await conv.save(tmp_path / "c.txt", tmp_path / "c.wav")
    assert (tmp_path / "c.txt").read_text() == (
        "system: persona\n\nuser: Hello there.\n\nassistant: Hello there.\n\n"
        "user: Four words right here.\n\nassistant: Four words right here.\n"
    )
    with wave.open(str(tmp_path / "c.wav"), "rb") as w:
        assert w.getframerate() == 16000
        assert w.getnframes() == pytest.approx(16000 * 0.05 * 4, abs=2)


@pytest.mark.anyio
async def test_a_turn_shows_each_chunk_as_its_audio_starts() -> None:
    shown: list[tuple[str, int]] = []
    sink = NullSink(realtime=False)
    llm = ScriptedLLM(lambda _: "First part here. Second part there.")
    with anyio.fail_after(10):
        async with Pipeline(llm, ToneTTS(), chunking="sentence") as pipe:
            conv = Conversation(pipe)

            def show(text: str) -> None:
                shown.append((text, round(sink.seconds * 1000)))

            async with conv.turn("Go.", sink, on_speech=show) as turn:
                pass
    assert turn.run is not None
    first = round(1000 * 0.05 * 3)  # ToneTTS: 50 ms a word; chunk 0 is three words
    assert shown == [("First part here.", 0), ("Second part there.", first)]


# -- the command line's parts --------------------------------------------------------------


def test_save_paths_name_a_text_and_a_wav_file() -> None:
    assert save_paths("talk") == (Path("talk.txt"), Path("talk.wav"))
    assert save_paths("talk.wav") == (Path("talk.txt"), Path("talk.wav"))
    assert save_paths("d/talk.txt") == (Path("d/talk.txt"), Path("d/talk.wav"))


def test_voice_spec_takes_a_piper_voice_or_a_tts_spec() -> None:
    assert voice_spec("voices/en_GB-alan.onnx") == "piper:voices/en_GB-alan.onnx"
    assert voice_spec("espeak:en-gb") == "espeak:en-gb"
    assert voice_spec("piper") == "piper"


@pytest.mark.anyio
async def test_keyboard_reads_lines_however_they_arrive_then_end() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "r") as stream, anyio.fail_after(5):
        keyboard = Keyboard(stream)
        async with anyio.create_task_group() as tg:
            lines: list[str | None] = []

            async def read_all() -> None:
                while (line := await keyboard.read_line()) is not None:
                    lines.append(line)
                lines.append(None)

            tg.start_soon(read_all)
            for piece in (b"hel", b"lo\nsecond", b" line\n", "caf\u00e9\n".encode(), b"last"):
                await anyio.wait_all_tasks_blocked()  # the reader waits on the loop, unblocked
                os.write(write_fd, piece)
            os.close(write_fd)
    assert lines == ["hello", "second line", "caf\u00e9", "last", None]


@pytest.mark.anyio
async def test_keyboard_sees_a_key_at_once_in_cbreak_mode_and_restores_the_terminal() -> None:
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "r") as stream, anyio.fail_after(5):
            keyboard = Keyboard(stream)
            assert keyboard.is_tty
            before = termios.tcgetattr(slave)
            with keyboard.keys():
                mode = termios.tcgetattr(slave)[3]
                assert not mode & termios.ICANON and not mode & termios.ECHO
                async with anyio.create_task_group() as tg:
                    tg.start_soon(keyboard.wait_key)
                    await anyio.wait_all_tasks_blocked()
                    os.write(master, b"x")  # one key, no Enter: seen without a newline
            assert termios.tcgetattr(slave) == before
            keyboard.close()
    finally:
        os.close(master)


def test_chat_reads_piped_turns_and_commands(tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/test installs it)")
    script = f"Hello there, friend.\n/bogus\nSecond line here.\n/save {tmp_path / 'p'}\n/quit\n"
    result = subprocess.run(
        [sys.executable, "-m", "voicepipe", "chat", "--llm", "text", "--tts", "espeak"],
        input=script,
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},  # no .asoundrc: no device, text only
        cwd=ROOT_DIR,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "shown as text only" in result.stderr
    assert "you> Hello there, friend.\nyou> unknown command /bogus" in result.stdout
    assert (
        (tmp_path / "p.txt")
        .read_text()
        .endswith("user: Second line here.\n\nassistant: Second line here.\n")
    )
    with wave.open(str(tmp_path / "p.wav"), "rb") as w:
        assert w.getnframes() > 0


async def _answer_over(
    voice_barge_in: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Listener, Microphone, DeviceSink]:
    """One `ChatSession.answer` into a device that plays until aborted, with a listener."""
    mic = Microphone()  # never opened: the test hands blocks to its PortAudio callback
    listener = Listener(mic)
    sink = DeviceSink(accept=2)
    out = io.StringIO()
    llm = ScriptedLLM(lambda _: ANSWER, interval=0.01)
    read_fd, write_fd = os.pipe()  # the keyboard: nothing typed
    with os.fdopen(read_fd) as keys, os.fdopen(write_fd, "w"):
        async with Pipeline(llm, ToneTTS()) as pipe:
            session = ChatSession(
                Conversation(pipe),
                Keyboard(keys),
                playback=False,
                out=out,
                listener=listener,
                voice_barge_in=voice_barge_in,
            )
            monkeypatch.setattr(session, "make_sink", lambda: sink)
            async with anyio.create_task_group() as tg:

                async def user() -> None:
                    await sink.full.wait()  # the answer is playing
                    if voice_barge_in:
                        talk(mic, np.concatenate([ECHO[: RATE // 2], LOUD[: RATE // 2]]))
                    else:
                        assert mic.paused
                        assert session.turn is not None
                        session.turn.interrupt()  # a key

                tg.start_soon(user)
                await session.answer("Why is the sky blue?")
    return out.getvalue(), listener, mic, sink


@pytest.mark.anyio
async def test_chat_speaking_over_the_answer_interrupts_it_and_keeps_the_utterance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with anyio.fail_after(10):
        shown, listener, mic, sink = await _answer_over(True, monkeypatch)
    assert sink.aborted and shown.endswith(" [interrupted]\n")
    assert listener.detector.in_utterance and not listener.detector.hearing_echo
    talk(mic, np.concatenate([LOUD[RATE // 2 :], np.zeros(RATE, np.int16)]))
    with anyio.fail_after(5):
        heard = await listener.next_utterance()  # the next turn: the whole of what was said
    assert len(heard) / RATE == pytest.approx(0.1 + 0.8 + 0.2, abs=0.021)


@pytest.mark.anyio
async def test_chat_without_voice_barge_in_gates_the_microphone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with anyio.fail_after(10):
        shown, listener, mic, sink = await _answer_over(False, monkeypatch)
    assert sink.aborted and shown.endswith(" [interrupted]\n")
    assert not mic.paused and not listener.detector.in_utterance
