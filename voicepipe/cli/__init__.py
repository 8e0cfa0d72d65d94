"""The `voicepipe` command: a thin layer over the library (the README shows the same in Python).

Each subcommand lives in its own module with ``add_parser(sub)``, which sets ``run`` (the
command), ``is_async`` and ``needs_prompt`` as parser defaults, and ``prompt_stdin`` when its
PROMPT may come from stdin (``-``, or piped in).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

import anyio

from voicepipe.cli import bench, chat, devices, say, serve, split, synth, traces
from voicepipe.cli.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    err,
    read_prompt,
    require_prompt,
)
from voicepipe.cli.hints import with_hint
from voicepipe.errors import ConfigError, VoicepipeError
from voicepipe.taskgroups import single_error

COMMANDS = (say, synth, bench, split, devices, chat, traces, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voicepipe",
        description="Make an LLM talk: speech starts while the model is still writing. "
        "Works offline by default (embedded llama.cpp + Piper).",
        epilog="Examples:\n"
        '  voicepipe say "Why is the sky blue?"\n'
        '  voicepipe synth "Tell me a story." -o story.mp3\n'
        '  voicepipe bench "Name three rivers." -n 5 --compare chunking=naive,sentence,adaptive\n'
        '  echo "Dr. Smith arrived. He sat." | voicepipe split\n\n'
        "Run `voicepipe COMMAND --help` for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"voicepipe {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _version() -> str:
    try:
        return version("voicepipe")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def _run(args: argparse.Namespace) -> int:
    if getattr(args, "prompt_stdin", False):
        read_prompt(args)
    if args.needs_prompt:
        require_prompt(args)
    if not args.is_async:
        return int(args.run(args))
    try:
        return int(anyio.run(args.run, args))
    except BaseExceptionGroup as group:
        raise single_error(group) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_INTERRUPTED
    except ConfigError as exc:
        if args.debug:
            raise
        err(f"error: {with_hint(exc)}")
        return EXIT_USAGE
    except VoicepipeError as exc:
        if args.debug:
            raise
        err(f"error: {with_hint(exc)}")
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
