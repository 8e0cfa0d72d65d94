"""`voicepipe serve`: the pipeline behind HTTP, for many concurrent conversations.

``create_app(llms, ttses)`` builds a Starlette app around providers that are loaded once and
shared by every session; each request runs its own pipeline, so sessions are isolated.

    POST /v1/chat/stream    JSON in, Server-Sent Events out: text, audio, error, metrics, done
    POST /v1/audio/speech   OpenAI-compatible: text in, audio (pcm, wav or mp3) streamed out
    GET  /v1/voices         the TTS engines (voices) and LLMs a client may choose from
    GET  /healthz           200 ok / 503 full (for a balancer), sessions, whether auth is on
    GET  /                  a small browser page that speaks the answer as it is written

A client that disconnects cancels its pipeline at once (the upstream LLM request is closed).
What the server trusts and refuses is in :mod:`voicepipe.apps.server.guards` (requests) and
:mod:`voicepipe.apps.server.serving` (connections).

Why one module of ~460 lines: the route handlers share one object (the loaded providers, the
session table, the settings), and every wire detail they use already lives in a sibling
module (protocol, audio, guards, serving, transcribe); what remains here is the routes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from voicepipe.apps.server.audio import (
    OPENAI_PCM_RATE,
    encode_mp3,
    pcm_stream,
    streaming_wav_header,
)
from voicepipe.apps.server.guards import (
    LOOPBACK_HOSTS,
    PAGE_POLICY,
    BearerAuth,
    HostAllowList,
    HostGuard,
    HTTPError,
    OriginGuard,
    RateLimit,
    SecurityHeaders,
    Sessions,
    bad_request,
    error_response,
)
from voicepipe.apps.server.protocol import (
    Emit,
    LiveResponse,
    audio_payload,
    choose,
    client_message,
    error_kind,
    error_payload,
    parse_messages,
    read_json,
    shown,
    sse,
)
from voicepipe.apps.server.transcribe import transcription
from voicepipe.audio.decode import find_ffmpeg
from voicepipe.audio.sinks.null import NullSink
from voicepipe.audio.sinks.stream import StreamSink
from voicepipe.errors import ConfigError, ProviderError, VoicepipeError
from voicepipe.events import AudioPlayed, StageFailed, TextChunk
from voicepipe.lifecycle import aclose_all, prepare_all
from voicepipe.llm.base import Message as ChatMessage
from voicepipe.llm.base import TokenSource
from voicepipe.llm.limited import shareable
from voicepipe.llm.text import TextSource
from voicepipe.pipeline import Pipeline
from voicepipe.taskgroups import single_error
from voicepipe.text.lexicon import Lexicon
from voicepipe.text.sentences import CHUNKINGS, Chunking, check_chunking
from voicepipe.transport.wording import scrub
from voicepipe.tts.base import TTSEngine
from voicepipe.voice.base import Transcriber

__all__ = ["ServerSettings", "create_app"]

log = logging.getLogger("voicepipe.apps.server.app")

WEB_DIR = Path(__file__).parent / "web"
# OpenAI's built-in voice names: stock OpenAI clients send one, so they mean "the default".
OPENAI_VOICES = frozenset(
    "alloy ash ballad coral echo fable nova onyx sage shimmer verse marin cedar".split()
)
SPEECH_FORMATS = ("pcm", "wav", "mp3")


@dataclass(frozen=True)
class ServerSettings:
    """Limits and policies: auth, CORS, hosts, request size, concurrency, request defaults."""

    api_key: str | None = None  # bearer token required on /v1/*; None: no auth
    cors_origins: tuple[str, ...] = ()  # origins allowed to call the API from a browser
    # Host names the server answers to (exact, "*.domain", "*": any); others get 400.
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    allow_ip_hosts: bool = False  # also any IP literal (bound to 0.0.0.0: reached by address)
    max_body_bytes: int = 256 * 1024
    body_timeout_s: float = 30.0  # a JSON body must arrive within this (408)
    upload_timeout_s: float = 120.0  # an audio upload must arrive within this (408)
    max_sessions: int = 16  # concurrent streams; more get 429 with retry-after
    max_sessions_per_client: int | None = None  # per client address; None: half, at least 1
    max_session_s: float = 600.0  # a stream longer than this is ended (an error event says so)
    heartbeat_s: float = 1.0  # an SSE comment after this long without an event
    rate_per_minute: int = 120  # requests per client address and minute on /v1 POSTs; 0: off
    max_messages: int = 200
    max_input_chars: int = 4096  # /v1/audio/speech input (OpenAI's limit too)
    max_audio_bytes: int = 25 * 1024 * 1024  # /v1/audio/transcriptions uploads (OpenAI's too)
    retry_after_s: int = 1
    chunking: Chunking = "adaptive"
    system: str | None = None
    lexicon: Lexicon | None = None  # how names and jargon are said, in every answer
    prepare_on_startup: bool = True  # load every model in the lifespan (once, shared)

    def __repr__(self) -> str:  # never show the key, e.g. in a log line or traceback
        key = "set" if self.api_key else "None"
        return f"ServerSettings(api_key={key}, max_sessions={self.max_sessions}, ...)"


class VoicepipeServer:
    """The app's state: shared providers, pipelines per configuration, sessions, settings."""

    def __init__(
        self,
        llms: Mapping[str, TokenSource],
        ttses: Mapping[str, TTSEngine],
        settings: ServerSettings,
    ) -> None:
        if not llms or not ttses:
            raise ConfigError("the server needs at least one LLM and one TTS engine")
        check_chunking(settings.chunking)
        self.llms = {key: shareable(llm) for key, llm in llms.items()}
        self.transcribes = False  # whether /v1/audio/transcriptions has a transcriber
        self.ttses = dict(ttses)
        self.settings = settings
        per_client = settings.max_sessions_per_client or max(1, settings.max_sessions // 2)
        self.sessions = Sessions(settings.max_sessions, per_client)
        self.rate = RateLimit(settings.rate_per_minute)
        self._pipelines: dict[tuple[str, str, str], Pipeline] = {}
        self._speech_source = TextSource(tokens_per_second=0)

    def pipeline(self, llm: str, tts: str, chunking: Chunking) -> Pipeline:
        """One Pipeline per configuration, so each keeps learning its TTS's speed."""
        key = (llm, tts, chunking)
        pipe = self._pipelines.get(key)
        if pipe is None:
            source = self._speech_source if llm == "" else self.llms[llm]
            pipe = Pipeline(
                source,
                self.ttses[tts],
                chunking=chunking,
                system=self.settings.system,
                lexicon=self.settings.lexicon,
            )
            self._pipelines[key] = pipe
        return pipe

    async def prepare(self) -> None:
        """Load every model now, concurrently; each is shared by all sessions."""
        await prepare_all((*self.llms.values(), *self.ttses.values()))

    async def aclose(self) -> None:
        await aclose_all((*self.llms.values(), *self.ttses.values()))

    # -- routes -----------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        """For a load balancer: 200 "ok" while the server takes sessions, 503 "full" (with
        Retry-After) while every slot is taken, so a full replica leaves the rotation until a
        slot frees; ``?live=1`` is always 200 while the process runs (a liveness probe that
        must not restart a replica for being busy)."""
        full = self.sessions.active >= self.sessions.limit
        body = {
            "status": "full" if full else "ok",
            "sessions": self.sessions.active,
            "max_sessions": self.sessions.limit,
            "served": self.sessions.served,
            "auth": self.settings.api_key is not None,
            "stt": self.transcribes,
        }
        if full and request.query_params.get("live") != "1":
            headers = {"retry-after": str(self.settings.retry_after_s)}
            return JSONResponse(body, status_code=503, headers=headers)
        return JSONResponse(body)

    async def voices(self, request: Request) -> Response:
        default_tts = next(iter(self.ttses))
        return JSONResponse(
            {
                "voices": [
                    {
                        "id": key,
                        "engine": tts.name,
                        "sample_rate": tts.sample_rate,
                        "default": key == default_tts,
                    }
                    for key, tts in self.ttses.items()
                ],
                "llms": [
                    {"id": key, "provider": llm.name, "default": i == 0}
                    for i, (key, llm) in enumerate(self.llms.items())
                ],
                "chunkings": list(CHUNKINGS),
            }
        )

    async def index(self, request: Request) -> Response:
        return FileResponse(
            WEB_DIR / "index.html",
            media_type="text/html",
            headers={"content-security-policy": PAGE_POLICY, "cache-control": "no-cache"},
        )

    async def _json_body(self, request: Request) -> dict[str, Any]:
        """The client's rate spent, then its JSON body, read within the limits."""
        self.rate.take(client_address(request))
        settings = self.settings
        return await read_json(request, settings.max_body_bytes, settings.body_timeout_s)

    async def chat_stream(self, request: Request) -> Response:
        received = time.perf_counter()
        try:
            body = await self._json_body(request)
            messages = parse_messages(body, self.settings.max_messages, self.settings.system)
            llm = choose(self.llms, body.get("llm"), "llm")
            voice = body.get("voice") if body.get("tts") is None else body.get("tts")
            tts = choose(self.ttses, voice, "voice")
            try:
                chunking = check_chunking(body.get("chunking", self.settings.chunking))
            except ConfigError:
                raise bad_request(
                    f"unknown chunking {shown(body.get('chunking'))}: use {', '.join(CHUNKINGS)}"
                ) from None
            release = self.sessions.acquire(self.settings.retry_after_s, client_address(request))
        except HTTPError as exc:
            return error_response(exc.status, str(exc), exc.kind, exc.headers)
        pipe = self.pipeline(llm, tts, chunking)

        async def produce(emit: Emit) -> None:
            await emit(b": voicepipe\n\n")  # headers and a first byte at once
            await self._chat_events(pipe, messages, emit, received)

        return LiveResponse(
            produce,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
            on_close=release,
            heartbeat=b":\n\n",
            heartbeat_s=self.settings.heartbeat_s,
        )

    async def _chat_events(
        self, pipe: Pipeline, messages: list[ChatMessage], emit: Emit, received: float
    ) -> None:
        """The SSE body: text and audio in the order the pipeline produced them, then the end."""
        # Audio travels in the AudioPlayed events, in order with the text; the sink is the
        # client's playback clock, so adaptive chunking grows chunks as it would at speakers.
        sink = NullSink(realtime=True)
        first_audio: float | None = None
        sequence = 0
        reported: set[int] = set()
        run = None
        limit = self.settings.max_session_s
        try:
            with anyio.move_on_after(limit) as too_long:
                async with pipe.run(messages, sink) as run:
                    async for event in run:
                        if isinstance(event, TextChunk):
                            await emit(sse("text", {"index": event.index, "text": event.text}))
                        elif isinstance(event, AudioPlayed):
                            await emit(sse("audio", audio_payload(event.chunk, sequence)))
                            sequence += 1
                            if first_audio is None:
                                first_audio = time.perf_counter()
                        elif isinstance(event, StageFailed):
                            reported.add(id(event.error))
                            log_failure(event.error, event.stage)
                            await emit(sse("error", error_payload(event.error, event.stage)))
        except VoicepipeError as exc:
            if id(exc) not in reported:
                log_failure(exc, "pipeline")
                await emit(sse("error", error_payload(exc, "pipeline")))
        except Exception as exc:
            log.exception("a chat stream failed")
            await emit(sse("error", {"stage": "server", "type": error_kind(exc), "message": ""}))
        if too_long.cancelled_caught:
            message = f"the conversation reached the server's limit of {limit:g} s"
            await emit(
                sse("error", {"stage": "server", "type": "SessionTooLong", "message": message})
            )
        metrics: dict[str, Any] = {}
        if run is not None and run.timeline.first("llm.request") is not None:
            metrics.update(run.metrics.as_dict())
            llm_request = run.timeline.first("llm.request")
            if llm_request is not None:
                metrics["server_to_llm_ms"] = (llm_request.t - received) * 1000
        metrics["server_ttfa_ms"] = None if first_audio is None else (first_audio - received) * 1000
        await emit(sse("metrics", metrics))
        ok = run is not None and run.error is None and not too_long.cancelled_caught
        await emit(sse("done", {"ok": ok}))

    async def speech(self, request: Request) -> Response:
        """OpenAI's ``/v1/audio/speech``: the text through the normalizer, chunker and TTS."""
        try:
            body = await self._json_body(request)
            text = body.get("input")
            if not isinstance(text, str) or not text.strip():
                raise bad_request("input must be a non-empty string")
            if len(text) > self.settings.max_input_chars:
                raise bad_request(f"input is over {self.settings.max_input_chars} characters")
            tts = self.speech_voice(body)
            fmt = body.get("response_format", "mp3")
            if fmt not in SPEECH_FORMATS:
                raise bad_request(f"response_format must be one of {', '.join(SPEECH_FORMATS)}")
            speed = body.get("speed", 1.0)
            if not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
                raise bad_request("speed must be a number from 0.25 to 4.0")
            if speed != 1.0:
                raise bad_request("this server speaks at speed 1.0 only")
            rate = self.ttses[tts].sample_rate if fmt == "wav" else OPENAI_PCM_RATE
            if "sample_rate" in body:
                rate = body["sample_rate"]
                if not isinstance(rate, int) or not 8000 <= rate <= 48000:
                    raise bad_request("sample_rate must be an integer from 8000 to 48000")
            ffmpeg = find_ffmpeg("mp3 output") if fmt == "mp3" else ""
            release = self.sessions.acquire(self.settings.retry_after_s, client_address(request))
        except HTTPError as exc:
            return error_response(exc.status, str(exc), exc.kind, exc.headers)
        except VoicepipeError as exc:
            return error_response(501, str(exc), error_kind(exc))
        pipe = self.pipeline("", tts, "adaptive")
        media = {"pcm": "audio/pcm", "wav": "audio/wav", "mp3": "audio/mpeg"}[fmt]

        async def produce(emit: Emit) -> None:
            sink = StreamSink()
            header = streaming_wav_header(rate) if fmt == "wav" else b""
            try:
                # Past the limit the audio just ends: the stream is cut, not broken.
                with anyio.move_on_after(self.settings.max_session_s):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._speak, pipe, text, sink)
                        pcm = pcm_stream(sink.audio, rate)
                        if fmt == "mp3":
                            await encode_mp3(ffmpeg, pcm, rate, emit)
                        else:
                            async for data in pcm:
                                await emit(header + data)
                                header = b""
            except BaseExceptionGroup as group:
                raise single_error(group) from None
            await emit(header)  # an answer with no audio is still a valid (empty) WAV

        return LiveResponse(
            produce,
            media_type=media,
            headers={"x-sample-rate": str(rate)},
            on_close=release,
        )

    def speech_voice(self, body: Mapping[str, Any]) -> str:
        """``voice`` or ``model`` names a server voice; OpenAI voice names mean the default."""
        for field_name in ("voice", "model"):
            wanted = body.get(field_name)
            if isinstance(wanted, str) and wanted in self.ttses:
                return wanted
        voice = body.get("voice")
        if voice is None or (isinstance(voice, str) and voice in OPENAI_VOICES):
            return next(iter(self.ttses))
        raise bad_request(
            f"unknown voice {shown(voice)}: this server offers {', '.join(self.ttses)}"
        )

    async def _speak(self, pipe: Pipeline, text: str, sink: StreamSink) -> None:
        """Run the speech pipeline; a failure before any audio becomes an error status."""
        try:
            await pipe.speak(text, sink)
        except VoicepipeError as exc:
            log_failure(exc, "speech")
            if sink.seconds == 0:
                status = 502 if isinstance(exc, ProviderError) else 500
                raise HTTPError(status, client_message(exc, "tts"), error_kind(exc)) from exc


def client_address(request: Request) -> str:
    """The peer's address (a trusted proxy's X-Forwarded-For only with --trusted-proxy)."""
    return request.client.host if request.client else "?"


def log_failure(exc: VoicepipeError, stage: str) -> None:
    """The operator's record of a failure: the full message, credentials masked."""
    log.warning("%s failed: %s: %s", stage, error_kind(exc), scrub(str(exc)))


def create_app(
    llms: TokenSource | Mapping[str, TokenSource],
    ttses: TTSEngine | Mapping[str, TTSEngine],
    settings: ServerSettings | None = None,
    stt: Transcriber | None = None,
) -> Starlette:
    """The ASGI app. The first LLM and TTS are the defaults; clients choose among these only.

    With ``stt`` the server also transcribes (``/v1/audio/transcriptions``); it is loaded
    with the other models and shared the same way.

    ``app.state.server`` is the :class:`VoicepipeServer` (sessions, providers, settings).
    """
    settings = settings or ServerSettings()
    llm_table = llms if isinstance(llms, Mapping) else {llms.name: llms}
    tts_table = ttses if isinstance(ttses, Mapping) else {ttses.name: ttses}
    server = VoicepipeServer(llm_table, tts_table, settings)
    parts = [] if stt is None else [stt]
    server.transcribes = stt is not None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.prepare_on_startup:
            await prepare_all([server, *parts])
        try:
            yield
        finally:
            await aclose_all([server, *parts])

    async def transcriptions(request: Request) -> Response:
        return await transcription(
            request, stt, settings.max_audio_bytes, server.rate, settings.upload_timeout_s
        )

    hosts = HostAllowList(settings.allowed_hosts, any_ip=settings.allow_ip_hosts)
    middleware = [Middleware(SecurityHeaders), Middleware(HostGuard, hosts=hosts)]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["authorization", "content-type"],
                expose_headers=["x-sample-rate", "retry-after"],
            )
        )
    middleware.append(Middleware(OriginGuard, allowed=settings.cors_origins))
    if settings.api_key:
        middleware.append(Middleware(BearerAuth, key=settings.api_key))
    routes = [
        Route("/", server.index, methods=["GET"]),
        Route("/healthz", server.healthz, methods=["GET"]),
        Route("/v1/voices", server.voices, methods=["GET"]),
        Route("/v1/chat/stream", server.chat_stream, methods=["POST"]),
        Route("/v1/audio/speech", server.speech, methods=["POST"]),
        Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
        Mount("/web", StaticFiles(directory=WEB_DIR), name="web"),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.server = server
    return app
