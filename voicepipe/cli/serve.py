"""`voicepipe serve`: the HTTP API and browser page (the work is voicepipe.apps.server.app)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from voicepipe.cli.common import add_provider_options, err
from voicepipe.errors import ConfigError
from voicepipe.lifecycle import prepare_all
from voicepipe.llm.base import TokenSource
from voicepipe.providers import make_llm, make_stt, make_tts
from voicepipe.text.sentences import CHUNKINGS
from voicepipe.tts.base import TTSEngine
from voicepipe.voice.whisper import installed as whisper_installed

KEY_ENV = "VOICEPIPE_API_KEY"


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the pipeline over HTTP (streaming API and a browser page)",
        description="Serve POST /v1/chat/stream (Server-Sent Events: text, audio, metrics), "
        "POST /v1/audio/speech (OpenAI-compatible), GET /v1/voices, GET /healthz, and a "
        "browser page at /. Models load once and are shared; clients may choose only among "
        "the --llm and --tts given here (the first of each is the default).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free one)")
    p.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"require Authorization: Bearer KEY on /v1/* (default: ${KEY_ENV}, else no auth)",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser calls from ORIGIN (repeatable; '*' for any)",
    )
    p.add_argument(
        "--max-sessions",
        type=int,
        default=16,
        metavar="N",
        help="concurrent streams; more get 429 with retry-after (default 16)",
    )
    p.add_argument(
        "--max-body",
        type=int,
        default=256 * 1024,
        metavar="BYTES",
        help="largest request body accepted (default 262144)",
    )
    p.add_argument(
        "--rate",
        type=int,
        default=120,
        metavar="N",
        help="requests per client address and minute on the API (default 120; 0: no limit)",
    )
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument(
        "--stt",
        metavar="SPEC",
        help="speech-to-text behind /v1/audio/transcriptions: local (Whisper, needs "
        "voicepipe[listen]; the default when installed), openai[:MODEL], or none",
    )
    g = p.add_argument_group("pipeline")
    add_provider_options(g, repeatable=True)
    g.add_argument(
        "--chunking", choices=CHUNKINGS, default="adaptive", help="default chunking (adaptive)"
    )
    g.add_argument("--max-tokens", type=int, metavar="N", help="cap each answer's length")
    g.add_argument("--seed", type=int, metavar="N", help="sampling seed (local LLM)")
    p.set_defaults(run=run, is_async=True, needs_prompt=False)


def build_providers(
    args: argparse.Namespace,
) -> tuple[dict[str, TokenSource], dict[str, TTSEngine]]:
    """The LLMs and voices the server offers, keyed by their spec."""
    llms = {
        spec: make_llm(spec, url=args.llm_url, max_tokens=args.max_tokens, seed=args.seed)
        for spec in args.llm or ["local"]
    }
    ttses = {spec: make_tts(spec, url=args.tts_url) for spec in args.tts or ["piper"]}
    return llms, ttses


async def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from voicepipe.apps.server.app import ServerSettings, create_app
    except ImportError as exc:
        raise ConfigError(
            f"serve needs the serve extra ({exc.name} is missing): pip install 'voicepipe[serve]'"
        ) from exc
    if args.max_sessions < 1 or args.max_body < 1 or args.rate < 0:
        raise ConfigError("--max-sessions and --max-body must be positive, --rate at least 0")
    llms, ttses = build_providers(args)
    settings = ServerSettings(
        api_key=args.api_key or os.environ.get(KEY_ENV) or None,
        cors_origins=tuple(args.cors_origin),
        max_body_bytes=args.max_body,
        max_sessions=args.max_sessions,
        rate_per_minute=args.rate,
        chunking=args.chunking,
        system=args.system,
        prepare_on_startup=False,  # loaded below, so a missing model fails before listening
    )
    spec = args.stt or ("local" if whisper_installed() else "none")
    if args.stt is None and spec == "none":
        err("no speech-to-text: /v1/audio/transcriptions is off (pip install 'voicepipe[listen]')")
    stt = None if spec == "none" else make_stt(spec)
    app = create_app(llms, ttses, settings, stt)
    err(f"loading llm={', '.join(llms)} tts={', '.join(ttses)} stt={spec} ...")
    await prepare_all([app.state.server] if stt is None else [app.state.server, stt])
    auth = "on" if settings.api_key else "off"
    err(f"serving on http://{args.host}:{args.port}/ (API key auth {auth}; Ctrl-C stops)")
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="info" if args.access_log else "warning",
        access_log=args.access_log,
        timeout_graceful_shutdown=5,
    )
    await uvicorn.Server(config).serve()
    return 0
