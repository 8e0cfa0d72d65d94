"""What every `voicepipe` command shares: pipeline options, building a pipeline, reporting."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from voicepipe.errors import ConfigError
from voicepipe.metrics import RunMetrics
from voicepipe.pipeline import CHUNKINGS, Pipeline
from voicepipe.providers import LLM_PROVIDERS, TTS_PROVIDERS, make_llm, make_tts

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def provider_help(table: dict[str, Any]) -> str:
    return "; ".join(f"{info.usage}: {info.summary}" for info in table.values())


def add_pipeline_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pipeline")
    g.add_argument(
        "--llm",
        default="local",
        metavar="SPEC",
        help=f"token source (default: local). {provider_help(LLM_PROVIDERS)}",
    )
    g.add_argument("--llm-url", metavar="URL", help="base URL for the LLM provider's API")
    g.add_argument(
        "--tts",
        default="piper",
        metavar="SPEC",
        help=f"TTS engine (default: piper). {provider_help(TTS_PROVIDERS)}",
    )
    g.add_argument("--tts-url", metavar="URL", help="base URL for the TTS provider's API")
    g.add_argument("--system", metavar="TEXT", help="system prompt (the assistant's persona)")
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


def err(message: str) -> None:
    """One line on stderr, prefixed with the program's name."""
    print(f"voicepipe: {message}", file=sys.stderr)


def require_prompt(args: argparse.Namespace) -> None:
    """Fail before loading any model when the prompt is empty."""
    if not args.prompt.strip():
        raise ConfigError("the prompt is empty: say what the assistant should answer")


def make_pipeline(args: argparse.Namespace) -> Pipeline:
    """The pipeline the shared options describe."""
    llm = make_llm(args.llm, url=args.llm_url, max_tokens=args.max_tokens, seed=args.seed)
    tts = make_tts(args.tts, url=args.tts_url)
    return Pipeline(llm, tts, chunking=args.chunking, system=args.system)


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
