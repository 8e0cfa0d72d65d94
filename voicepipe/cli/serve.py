"""`voicepipe serve`: the HTTP API and browser page (the work is voicepipe.apps.server.app)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from voicepipe.cli.common import (
    add_key_options,
    add_lexicon_option,
    add_provider_options,
    add_sampling_options,
    add_tts_options,
    err,
    key_from_args,
    tts_options,
)
from voicepipe.errors import ConfigError
from voicepipe.lifecycle import prepare_all
from voicepipe.llm.base import TokenSource
from voicepipe.providers import make_llm, make_stt, make_tts
from voicepipe.text.lexicon import load_lexicon
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
        help=f"require Authorization: Bearer KEY on /v1/*; better: set ${KEY_ENV}, which "
        "other users cannot read in the process list (default: no auth)",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests for host NAME (repeatable; *.example.com for subdomains; "
        "'*' for any): other names than localhost, 127.0.0.1, ::1 and --host get 400, which "
        "stops DNS rebinding",
    )
    p.add_argument(
        "--trusted-proxy",
        metavar="ADDRESSES",
        help="believe X-Forwarded-For from these addresses (comma-separated, e.g. 127.0.0.1): "
        "set it behind a reverse proxy, so limits apply per real client (default: ignored)",
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
        "--max-sessions-per-client",
        type=int,
        metavar="N",
        help="concurrent streams per client address (default: half of --max-sessions)",
    )
    p.add_argument(
        "--max-session-seconds",
        type=float,
        default=600.0,
        metavar="S",
        help="end a stream after S seconds (default 600)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="open connections; past it the longest idle one is closed (default: from the "
        "file descriptor limit, at most 1000)",
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
    add_key_options(g)
    add_tts_options(g)
    g.add_argument(
        "--chunking", choices=CHUNKINGS, default="adaptive", help="default chunking (adaptive)"
    )
    add_sampling_options(g, "cap each answer's length")
    add_lexicon_option(p)
    p.set_defaults(run=run, is_async=True, needs_prompt=False)


def build_providers(
    args: argparse.Namespace,
) -> tuple[dict[str, TokenSource], dict[str, TTSEngine]]:
    """The LLMs and voices the server offers, keyed by their spec."""
    llm_key, tts_key = key_from_args(args, "llm"), key_from_args(args, "tts")
    llms = {
        spec: make_llm(
            spec,
            url=args.llm_url,
            api_key=llm_key,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            seed=args.seed,
            on_fallback=err,  # the operator's log: a chain switched (--llm a,b)
        )
        for spec in args.llm or ["local"]
    }
    ttses = {
        spec: make_tts(
            spec, url=args.tts_url, api_key=tts_key, on_fallback=err, **tts_options(args)
        )
        for spec in args.tts or ["piper"]
    }
    return llms, ttses


WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def api_key(given: str | None) -> str | None:
    """The key: ``--api-key``, else ``$VOICEPIPE_API_KEY``; None when neither is given.

    One that is given but empty (``--api-key "$KEY"`` with ``$KEY`` unset) is an error, not a
    server without auth.
    """
    if given is not None:
        if not given.strip():
            raise ConfigError(
                f"--api-key is empty (an unset variable?): give the key, or set ${KEY_ENV}"
            )
        err(f"note: --api-key shows in the process list; ${KEY_ENV} does not")
        return given.strip()
    env = os.environ.get(KEY_ENV)
    if env is not None and not env.strip():
        raise ConfigError(f"${KEY_ENV} is set but empty: give the key, or unset it for no auth")
    return env.strip() if env else None


def allowed_hosts(host: str, extra: list[str]) -> tuple[tuple[str, ...], bool]:
    """The Host names the server answers to, and whether any IP address is one (bound to all
    interfaces, it is reached by whatever address the client used)."""
    from voicepipe.apps.server.guards import LOOPBACK_HOSTS

    wildcard = host in WILDCARD_HOSTS
    names = [*LOOPBACK_HOSTS, *([] if wildcard else [host]), *extra]
    return tuple(dict.fromkeys(names)), wildcard


def check_limits(args: argparse.Namespace) -> None:
    if args.max_sessions < 1 or args.max_body < 1 or args.rate < 0:
        raise ConfigError("--max-sessions and --max-body must be positive, --rate at least 0")
    if args.max_sessions_per_client is not None and args.max_sessions_per_client < 1:
        raise ConfigError("--max-sessions-per-client must be positive")
    if not args.max_session_seconds > 0:
        raise ConfigError("--max-session-seconds must be positive")
    if args.max_connections is not None and args.max_connections < 1:
        raise ConfigError("--max-connections must be positive")


async def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from voicepipe.apps.server.app import ServerSettings, create_app
        from voicepipe.apps.server.serving import descriptor_limit, fitted_limits, server_config
    except ImportError as exc:
        raise ConfigError(
            f"serve needs the serve extra ({exc.name} is missing): pip install 'voicepipe[serve]'"
        ) from exc
    check_limits(args)
    key = api_key(args.api_key)
    hosts, any_ip = allowed_hosts(args.host, args.allow_host)
    llms, ttses = build_providers(args)
    settings = ServerSettings(
        api_key=key,
        cors_origins=tuple(args.cors_origin),
        allowed_hosts=hosts,
        allow_ip_hosts=any_ip,
        max_body_bytes=args.max_body,
        max_sessions=args.max_sessions,
        max_sessions_per_client=args.max_sessions_per_client,
        max_session_s=args.max_session_seconds,
        rate_per_minute=args.rate,
        chunking=args.chunking,
        system=args.system,
        lexicon=load_lexicon(args.lexicon) if args.lexicon else None,
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
    shown = f"[{args.host}]" if ":" in args.host else args.host
    err(f"serving on http://{shown}:{args.port}/ (API key auth {auth}; Ctrl-C stops)")
    if args.host not in ("127.0.0.1", "localhost", "::1") and settings.api_key is None:
        err(f"warning: listening beyond this machine without an API key (set ${KEY_ENV})")
    limits = fitted_limits(descriptor_limit(), args.max_connections)
    config = server_config(
        app,
        host=args.host,
        port=args.port,
        limits=limits,
        trusted_proxy=args.trusted_proxy,
        access_log=args.access_log,
    )
    await uvicorn.Server(config).serve()
    return 0
