"""`voicepipe chat`: a spoken conversation in the terminal, with barge-in and a few commands.

Typed turns (or spoken, with ``--listen``); the answer is shown chunk by chunk as its audio
starts, and spoken. Any key while the assistant speaks (or Ctrl-C, or with ``--listen``
speaking over it) stops it; Ctrl-C or Ctrl-D at the prompt leaves. This module is the
command (options, models, microphone, traces); the terminal loop is
:mod:`voicepipe.cli.chat_terminal`.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AsyncExitStack
from typing import Any

from voicepipe.apps.chat import DEFAULT_BUDGET_CHARS, Conversation, Turn
from voicepipe.apps.otel import endpoint as otel_endpoint
from voicepipe.cli.chat_terminal import HELP, ChatSession
from voicepipe.cli.common import (
    add_key_options,
    add_lexicon_option,
    add_pipeline_options,
    err,
    export_otel,
    make_pipeline,
    provider_help,
    stt_from_args,
    trace_config,
    tts_from_args,
    with_lexicon,
)
from voicepipe.cli.keyboard import Keyboard
from voicepipe.errors import ConfigError, NoDevice
from voicepipe.lifecycle import prepare_all
from voicepipe.llm.local import ASSISTANT_SYSTEM
from voicepipe.providers import STT_PROVIDERS
from voicepipe.voice.base import Transcriber
from voicepipe.voice.classifiers import VADS, make_classifier
from voicepipe.voice.echo import EchoCanceller, PlayedAudio
from voicepipe.voice.echo import installed as echo_installed
from voicepipe.voice.listener import Listener
from voicepipe.voice.microphone import Microphone
from voicepipe.voice.vad import VoiceActivity


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "chat",
        help="talk with the assistant: typed turns, spoken answers, interrupt with any key",
        description="A spoken conversation. Type a message and press Enter; the answer is "
        "spoken as it is written. Press any key (or Ctrl-C) while it speaks to interrupt. "
        "Without --system the assistant is told to answer correctly and briefly, in plain "
        "spoken English (the embedded model also gets five worked examples). "
        + HELP.replace("\n", ". "),
    )
    p.add_argument("--device", metavar="NAME|INDEX", help="output device (voicepipe devices)")
    p.add_argument("--stats", action="store_true", help="show each turn's TTFA in a status line")
    p.add_argument(
        "--history-chars",
        type=int,
        default=DEFAULT_BUDGET_CHARS,
        metavar="N",
        help=f"history budget in characters; the oldest turns go first "
        f"(default {DEFAULT_BUDGET_CHARS})",
    )
    v = p.add_argument_group("voice input")
    v.add_argument(
        "--listen",
        action="store_true",
        help="talk instead of typing: each utterance (found by voice-activity detection) is "
        "transcribed and answered; typing still works",
    )
    v.add_argument(
        "--stt",
        metavar="SPEC",
        help="speech-to-text for --listen (default: local, or openai with --stt-url). "
        + provider_help(STT_PROVIDERS),
    )
    v.add_argument(
        "--vad",
        choices=VADS,
        help="voice detector: silero (a small neural network; the default when installed), "
        "webrtc, or energy (level above the noise floor only)",
    )
    v.add_argument(
        "--stt-url",
        metavar="URL",
        help="base URL of an OpenAI-compatible /audio/transcriptions server (local whisper)",
    )
    add_key_options(v, ("stt",))
    v.add_argument(
        "--input-device", metavar="NAME|INDEX", help="microphone for --listen (voicepipe devices)"
    )
    v.add_argument(
        "--no-voice-barge-in",
        dest="voice_barge_in",
        action="store_false",
        help="ignore the microphone while the assistant speaks (by default, speaking over it "
        "interrupts it)",
    )
    v.add_argument(
        "--echo-cancel",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="take the assistant's own voice out of the microphone while it speaks, with the "
        "audio it played as the reference (Speex, from the listen extra): speaking over it "
        "works on speakers, not only headphones (default: on when installed)",
    )
    v.add_argument(
        "--barge-in-margin",
        type=float,
        default=VoiceActivity.echo_margin_db,
        metavar="DB",
        help="how much louder than the assistant's own voice at the microphone speech must be "
        f"to interrupt it (default {VoiceActivity.echo_margin_db:g} dB)",
    )
    add_pipeline_options(p)
    add_lexicon_option(p)
    p.set_defaults(run=run, is_async=True, needs_prompt=False)


def echo_canceller(args: argparse.Namespace) -> EchoCanceller | None:
    """Cancel the assistant's echo while it speaks (voice barge-in), when pyaec is there."""
    if not args.voice_barge_in or args.echo_cancel is False:
        return None
    if args.echo_cancel is None and not echo_installed():
        return None  # the default: on when installed (voicepipe[listen])
    return EchoCanceller(PlayedAudio())


async def run(args: argparse.Namespace) -> int:
    from voicepipe.audio.devices import resolve

    if args.system is None:
        args.system = ASSISTANT_SYSTEM
    if args.history_chars < 0:
        raise ConfigError("--history-chars must be 0 or more")
    if args.barge_in_margin < 0:
        raise ConfigError("--barge-in-margin must be 0 dB or more")
    playback = True
    try:
        resolve(args.device, "output")
    except NoDevice as exc:
        if args.device is not None:
            raise
        playback = False
        err(f"{exc}: answers are shown as text only (/save FILE keeps an answer's audio)")
    transcriber = stt_from_args(args) if args.listen else None
    keyboard = Keyboard(sys.stdin)
    try:
        async with AsyncExitStack() as stack:
            listener: Listener | None = None
            if transcriber is not None:
                stack.push_async_callback(transcriber.aclose)
                microphone = await stack.enter_async_context(Microphone(args.input_device))
                listener = Listener(
                    microphone,
                    VoiceActivity(echo_margin_db=args.barge_in_margin),
                    make_classifier(args.vad),
                    echo_canceller(args),
                )
                listener.pause()  # until the models are loaded
            return await _chat(args, keyboard, playback, listener, transcriber)
    finally:
        keyboard.close()


async def _chat(
    args: argparse.Namespace,
    keyboard: Keyboard,
    playback: bool,
    listener: Listener | None,
    transcriber: Transcriber | None,
) -> int:
    err("loading the models…")
    pipe = with_lexicon(make_pipeline(args), args)
    await prepare_all([pipe] if transcriber is None else [pipe, transcriber])  # concurrently
    async with pipe:
        conversation = Conversation(pipe, budget_chars=args.history_chars)
        if listener is not None:
            listener.resume()
            err("ready: speak, or type a message and press Enter (/help for commands)")
        else:
            err("ready: type a message and press Enter (/help for commands)")
        traces = TurnTraces(args) if args.trace or otel_endpoint() else None
        session = ChatSession(
            conversation,
            keyboard,
            playback=playback,
            device=args.device,
            make_voice=lambda spec: tts_from_args(args, spec),
            stats=args.stats,
            listener=listener,
            transcriber=transcriber,
            voice_barge_in=args.voice_barge_in,
            on_turn=None if traces is None else traces.record,
        )
        try:
            return await session.serve()
        finally:
            if traces is not None:
                traces.report()


class TurnTraces:
    """``chat --trace``: each turn stored as it ends (so Ctrl-C loses none), listed at exit;
    with an OpenTelemetry endpoint in the environment, each turn is also exported."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.store = bool(args.trace)
        self.config = trace_config(args)
        self.text = bool(args.trace_text)
        self.ids: list[int] = []

    async def record(self, turn: Turn) -> int | None:
        from voicepipe.apps.traces import record

        if turn.run is None:
            return None
        await export_otel(self.args, [turn.run], "chat")
        if not self.store:
            return None
        config = {**self.config, "interrupted": turn.interrupted}
        (trace_id,) = await record([(turn.run, config, turn.user)], command="chat", text=self.text)
        self.ids.append(trace_id)
        return trace_id

    def report(self) -> None:
        if self.ids:
            first, last = self.ids[0], self.ids[-1]
            span = str(first) if first == last else f"{first}-{last}"
            err(f"{len(self.ids)} turn(s) recorded as traces {span} (voicepipe traces show ID)")
