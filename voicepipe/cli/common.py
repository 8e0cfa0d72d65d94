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
from voicepipe.transport.settings import Timeouts
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
            help=f"{what}{many} (default: {default}). {provider_help(table)}",
        )
        g.add_argument(
            f"--{option}-url", metavar="URL", help=f"base URL for the {option.upper()} API"
        )
    g.add_argument("--system", metavar="TEXT", help="system prompt (the assistant's persona)")


def add_pipeline_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pipeline")
    add_provider_options(g)
    g.add_argument(
        "--chunking",
        choices=CHUNKINGS,
        default="adaptive",
        help="when text goes to the TTS: adaptive (first clause early, then sentences; "
        "default), sentence (each sentence), naive (whole answer first: the baseline)",
    )
    g.add_argument(
        "--max-tokens", type=int, metavar="N", help="cap the answer's length (local default 256)"
    )
    g.add_argument("--seed", type=int, metavar="N", help="sampling seed (local LLM)")
    r = p.add_argument_group("traces (voicepipe traces)")
    r.add_argument(
        "--trace",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="record the run's timeline in the trace store (default: on for bench, off for "
        "the other commands; $VOICEPIPE_TRACE_DB overrides the file)",
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


def require_prompt(args: argparse.Namespace) -> None:
    """Fail before loading any model when the prompt is empty."""
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


def make_pipeline(args: argparse.Namespace) -> Pipeline:
    """The pipeline the shared options describe."""
    if getattr(args, "verbose", False):
        err(f"loading llm={args.llm} tts={args.tts} ...")
    limits = timeouts(args)
    llm = make_llm(
        args.llm, url=args.llm_url, max_tokens=args.max_tokens, seed=args.seed, timeouts=limits
    )
    tts = make_tts(args.tts, url=args.tts_url, timeouts=limits)
    return Pipeline(llm, tts, chunking=args.chunking, system=args.system)


async def record_trace(args: argparse.Namespace, run: Run, command: str) -> None:
    """Store ``run`` in the trace store when ``--trace`` was given (API keys never are)."""
    if not getattr(args, "trace", None):
        return
    from voicepipe.apps.traces import record

    config = {k: getattr(args, k, None) for k in ("llm", "tts", "chunking", "llm_url", "tts_url")}
    config.update(
        max_tokens=getattr(args, "max_tokens", None), system=getattr(args, "system", None)
    )
    prompt = getattr(args, "prompt", None)
    (trace_id,) = await record(
        [(run, config, prompt)], command=command, text=bool(getattr(args, "trace_text", False))
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
    parts = m.breakdown()
    if parts:
        print("  where TTFA went: " + ", ".join(f"{k} {v:.0f}" for k, v in parts.items()), file=out)


def stt_from_args(args: argparse.Namespace) -> Transcriber:
    """``--stt``/``--stt-url``: a URL alone means an OpenAI-compatible server, else local."""
    spec = args.stt or ("openai" if args.stt_url else "local")
    return make_stt(spec, url=args.stt_url)
