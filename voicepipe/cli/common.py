"""What every `voicepipe` command shares: pipeline options, building a pipeline, reporting."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any, TextIO

from voicepipe.errors import ConfigError
from voicepipe.metrics import RunMetrics
from voicepipe.pipeline import Pipeline, Run
from voicepipe.providers import LLM_PROVIDERS, TTS_PROVIDERS, make_llm, make_stt, make_tts
from voicepipe.text.sentences import CHUNKINGS
from voicepipe.transport.keys import named_key
from voicepipe.transport.settings import Timeouts
from voicepipe.tts.base import TTSEngine
from voicepipe.voice.base import Transcriber

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def provider_help(table: dict[str, Any]) -> str:
    return "; ".join(f"{info.usage}: {info.summary}" for info in table.values())


def add_provider_options(g: argparse._ArgumentGroup, *, repeatable: bool = False) -> None:
    """--llm, --tts, their URLs and --system; ``repeatable``: a server offering several."""
    many = ", repeatable" if repeatable else ""
    for option, default, what, table in (
        ("llm", "local", "token source", LLM_PROVIDERS),
        ("tts", "piper", "TTS engine (a voice)", TTS_PROVIDERS),
    ):
        g.add_argument(
            f"--{option}",
            action="append" if repeatable else "store",
            default=None if repeatable else default,
            metavar="SPEC",
            help=f"{what}{many} (default: {default}); A,B is a fallback chain, B takes over "
            f"when A fails. {provider_help(table)}",
        )
        g.add_argument(
            f"--{option}-url", metavar="URL", help=f"base URL for the {option.upper()} API"
        )
    g.add_argument("--system", metavar="TEXT", help="system prompt (the assistant's persona)")


def add_key_options(g: argparse._ArgumentGroup, kinds: tuple[str, ...] = ("llm", "tts")) -> None:
    """--llm-key-env VAR etc.: the name of the variable that holds a key for that server."""
    for kind in kinds:
        g.add_argument(
            f"--{kind}-key-env",
            metavar="VAR",
            help=f"send the key in environment variable VAR to the {kind.upper()} server "
            f"(--{kind}-url, or the provider's own); the variable's name, never the key",
        )


def add_sampling_options(g: argparse._ArgumentGroup, max_tokens_help: str) -> None:
    """--max-tokens, --temperature and --seed: how the LLM writes each answer."""
    g.add_argument("--max-tokens", type=int, metavar="N", help=max_tokens_help)
    g.add_argument(
        "--temperature",
        type=float,
        metavar="T",
        help="sampling temperature, 0 (greedy) to 2 (default: the model's; local: 0)",
    )
    g.add_argument("--seed", type=int, metavar="N", help="sampling seed (local LLM)")


def add_tts_options(g: argparse._ArgumentGroup) -> None:
    """--tts-speed, --tts-format, --tts-instructions: passed to the engines that have them."""
    g.add_argument(
        "--tts-speed",
        type=float,
        metavar="X",
        help="speaking rate, 1.0 normal (piper, espeak, openai 0.25-4, elevenlabs 0.7-1.2)",
    )
    g.add_argument(
        "--tts-format",
        metavar="FMT",
        help="the TTS server's audio format: openai pcm (default), wav, mp3, opus, aac, flac; "
        "elevenlabs pcm_22050 (default), pcm_24000, mp3_44100_128, ...",
    )
    g.add_argument(
        "--tts-instructions",
        metavar="TEXT",
        help="how to speak, for OpenAI voices that take it (gpt-4o-mini-tts)",
    )


def add_pipeline_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pipeline")
    add_provider_options(g)
    add_key_options(g)
    g.add_argument(
        "--chunking",
        choices=CHUNKINGS,
        default="adaptive",
        help="when text goes to the TTS: adaptive (first clause early, then sentences; "
        "default), sentence (each sentence), naive (whole answer first: the baseline)",
    )
    add_sampling_options(g, "cap the answer's length (local default 256)")
    add_tts_options(p.add_argument_group("voice (TTS options, for the engines that take them)"))
    r = p.add_argument_group("traces (voicepipe traces)")
    r.add_argument(
        "--trace",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="record the run's timeline in the trace store (default: on for bench, off for "
        "the other commands; chat records each turn; $VOICEPIPE_TRACE_DB overrides the file)",
    )
    r.add_argument(
        "--trace-text",
        action="store_true",
        help="also store the prompt, the answer and the chunk text (never stored otherwise)",
    )
    t = p.add_argument_group("network timeouts (seconds; HTTP providers only)")
    t.add_argument(
        "--timeout-connect", type=float, metavar="S", help="to open a connection (default 10)"
    )
    t.add_argument(
        "--timeout-first-token",
        type=float,
        metavar="S",
        help="from the request to the first byte of the answer (default 60)",
    )
    t.add_argument(
        "--timeout-idle", type=float, metavar="S", help="longest gap inside a stream (default 30)"
    )


def err(message: str) -> None:
    """One line on stderr, prefixed with the program's name."""
    print(f"voicepipe: {message}", file=sys.stderr)


NO_PROMPT = "no prompt: give PROMPT, or `-` to read it from stdin, or pipe it in"


def read_prompt(args: argparse.Namespace, stdin: TextIO | None = None) -> None:
    """PROMPT ``-``, or no PROMPT with stdin not a terminal: the prompt is stdin's text.

    ``echo q | voicepipe synth -o x.wav`` then works as ``voicepipe synth q -o x.wav``. A
    terminal is never waited on, nor stdin read when --prompts or --voice give the input.
    """
    stdin = sys.stdin if stdin is None else stdin
    if args.prompt != "-":
        given = getattr(args, "prompts", None) or getattr(args, "voice", None)
        if args.prompt is not None or given:
            return
        if stdin is None or stdin.closed or stdin.isatty():
            return
    if stdin is None or stdin.closed:
        raise ConfigError("PROMPT is `-` but there is no stdin to read it from")
    data = stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"the prompt on stdin is not valid UTF-8 (byte {exc.start}); convert it first, "
            "e.g. with iconv"
        ) from None
    args.prompt = text.strip()


def require_prompt(args: argparse.Namespace) -> None:
    """Fail before loading any model when the prompt is missing or empty."""
    if args.prompt is None:
        raise ConfigError(NO_PROMPT)
    if not args.prompt.strip():
        raise ConfigError("the prompt is empty: say what the assistant should answer")
    try:
        args.prompt.encode("utf-8")
    except UnicodeEncodeError as exc:  # undecodable argv bytes arrive as lone surrogates
        raise ConfigError(
            "the prompt is not valid UTF-8; convert it first, e.g. with iconv"
        ) from exc


_TIMEOUT_OPTIONS = {"connect": "connect", "first_byte": "first-token", "idle": "idle"}


def timeouts(args: argparse.Namespace) -> Timeouts | None:
    """The --timeout-* options as Timeouts (None when none is given), checked for sense."""
    given: dict[str, float] = {}
    for field, option in _TIMEOUT_OPTIONS.items():
        value = getattr(args, "timeout_" + option.replace("-", "_"), None)
        if value is None:
            continue
        if not 0 < value < math.inf:  # also false for NaN
            raise ConfigError(f"--timeout-{option} must be a positive number of seconds")
        given[field] = value
    return Timeouts(**given) if given else None


def key_from_args(args: argparse.Namespace, kind: str) -> str | None:
    """The key ``--KIND-key-env VAR`` names (None without the option), read from the
    environment: a missing variable is an error naming it."""
    var = getattr(args, f"{kind}_key_env", None)
    if var is None:
        return None
    spec = getattr(args, kind, None)
    if isinstance(spec, list):  # a repeatable option (serve): the first is the default
        spec = spec[0] if spec else None
    provider = (spec or kind).partition(":")[0]
    return named_key(var, provider, f"--{kind}-key-env")


def tts_options(args: argparse.Namespace) -> dict[str, Any]:
    """The --tts-* options as make_tts keywords (only those given)."""
    given = {
        "speed": getattr(args, "tts_speed", None),
        "format": getattr(args, "tts_format", None),
        "instructions": getattr(args, "tts_instructions", None),
    }
    return {k: v for k, v in given.items() if v is not None}


def tts_from_args(args: argparse.Namespace, spec: str | None = None) -> TTSEngine:
    """The engine ``--tts`` (or ``spec``, e.g. chat's /voice) names, with every TTS option."""
    return make_tts(
        spec or args.tts,
        url=args.tts_url,
        api_key=key_from_args(args, "tts"),
        timeouts=timeouts(args),
        on_fallback=err,  # a chain's switch (--tts piper,espeak), as it happens
        **tts_options(args),
    )


def make_pipeline(args: argparse.Namespace) -> Pipeline:
    """The pipeline the shared options describe."""
    if getattr(args, "verbose", False):
        err(f"loading llm={args.llm} tts={args.tts} ...")
    llm = make_llm(
        args.llm,
        url=args.llm_url,
        api_key=key_from_args(args, "llm"),
        max_tokens=args.max_tokens,
        temperature=getattr(args, "temperature", None),
        seed=args.seed,
        timeouts=timeouts(args),
        on_fallback=err,
    )
    return Pipeline(llm, tts_from_args(args), chunking=args.chunking, system=args.system)


def trace_config(args: argparse.Namespace) -> dict[str, Any]:
    """What a trace keeps of the options: specs, URLs and settings (never a key, nor the
    name of its variable; text such as the system prompt only with --trace-text)."""
    keys = ("llm", "tts", "chunking", "llm_url", "tts_url", "max_tokens", "temperature", "seed")
    config = {k: getattr(args, k, None) for k in keys}
    config.update(tts_speed=getattr(args, "tts_speed", None))
    config.update(tts_format=getattr(args, "tts_format", None))
    config.update(system=getattr(args, "system", None))
    if getattr(args, "trace_text", False):
        config["tts_instructions"] = getattr(args, "tts_instructions", None)
    return config


async def export_otel(
    args: argparse.Namespace,
    runs: list[Run],
    command: str,
    config: dict[str, Any] | None = None,
) -> None:
    """Send the runs to OpenTelemetry when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (one trace
    each, ``config``'s settings or --llm/--tts/--chunking on it; text only with --trace-text);
    a missing extra or a failed export is one line."""
    from voicepipe.apps import otel

    if otel.endpoint() is None or not runs:
        return
    if not otel.installed():
        err(f"{otel.ENDPOINT_ENVS[1]} is set but the OpenTelemetry exporter is not installed: "
            "pip install 'voicepipe[otel]'")  # fmt: skip
        return
    import logging

    # The exporter logs each retry; the CLI says what matters in one line below.
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
    if config is None:
        config = {k: getattr(args, k, None) for k in ("llm", "tts", "chunking")}
    settings = {k: v for k, v in config.items() if isinstance(v, str | bool | int | float)}
    text = bool(getattr(args, "trace_text", False))
    if not await otel.export(runs, command=command, attributes=settings, text=text):
        err(
            "the OpenTelemetry export failed: is the receiver at the OTLP endpoint running? "
            "(the run itself is done)"
        )


async def record_trace(args: argparse.Namespace, run: Run, command: str) -> None:
    """Store ``run`` in the trace store when ``--trace`` was given (API keys never are), and
    export it to OpenTelemetry when the environment names an endpoint."""
    await export_otel(args, [run], command)
    if not getattr(args, "trace", None):
        return
    from voicepipe.apps.traces import record

    prompt = getattr(args, "prompt", None)
    (trace_id,) = await record(
        [(run, trace_config(args), prompt)],
        command=command,
        text=bool(getattr(args, "trace_text", False)),
    )
    err(f"trace {trace_id} recorded (voicepipe traces show {trace_id})")


def print_metrics(m: RunMetrics, out: TextIO) -> None:
    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f} ms"

    print(
        f"TTFA {fmt(m.ttfa_ms)} (first token {fmt(m.ttft_ms)}, first chunk "
        f"{fmt(m.first_chunk_ms)}, TTS first audio {fmt(m.tts_first_audio_ms)}); "
        f"{m.audio_ms / 1000:.1f} s of audio in {m.chunks} chunks; underrun {m.underrun_ms:.0f} ms",
        file=out,
    )
    if m.audible_ms is not None:  # playback: when the first sample left the speaker
        after = fmt(m.output_latency_ms)
        print(f"  audible {fmt(m.audible_ms)}: left the speaker {after} after TTFA", file=out)
    parts = m.breakdown()
    if parts:
        print("  where TTFA went: " + ", ".join(f"{k} {v:.0f}" for k, v in parts.items()), file=out)


def stt_from_args(args: argparse.Namespace) -> Transcriber:
    """``--stt``/``--stt-url``: a URL alone means an OpenAI-compatible server, else local;
    ``--stt-key-env VAR`` names the key's variable."""
    spec = args.stt or ("openai" if args.stt_url else "local")
    var = getattr(args, "stt_key_env", None)
    key = None if var is None else named_key(var, spec.partition(":")[0], "--stt-key-env")
    return make_stt(spec, url=args.stt_url, api_key=key)


def add_lexicon_option(p: argparse.ArgumentParser) -> None:
    """--lexicon FILE: how names and jargon are said (voicepipe.text.lexicon)."""
    p.add_argument(
        "--lexicon",
        metavar="FILE",
        help="how words are said, one 'written = said' a line (names, jargon; /regex/ too); "
        "applied before the built-in reading of numbers and symbols",
    )


def with_lexicon(pipe: Pipeline, args: argparse.Namespace) -> Pipeline:
    """``pipe`` speaking with the --lexicon file. :raises ConfigError: a bad file, named."""
    path = getattr(args, "lexicon", None)
    if path:
        from voicepipe.text.lexicon import load_lexicon

        pipe.lexicon = load_lexicon(path)
    return pipe
