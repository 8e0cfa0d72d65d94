"""`voicepipe serve`: the pipeline behind HTTP, for many concurrent conversations.

``create_app(llms, ttses)`` builds a Starlette app around providers that are loaded once and
shared by every session; each request runs its own pipeline, so sessions are isolated.

    POST /v1/chat/stream    JSON in, Server-Sent Events out: text, audio, error, metrics, done
    POST /v1/audio/speech   OpenAI-compatible: text in, audio (pcm, wav or mp3) streamed out
    GET  /v1/voices         the TTS engines (voices) and LLMs a client may choose from
    GET  /healthz           liveness, active sessions, whether auth is on
    GET  /                  a small browser page that speaks the answer as it is written

A client that disconnects cancels its pipeline at once (the upstream LLM request is closed).
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.decode import find_ffmpeg
from voicepipe.audio.resample import convert_rate
from voicepipe.audio.sinks.null import NullSink
from voicepipe.audio.sinks.stream import StreamSink
from voicepipe.audio.wav import wav_header
from voicepipe.errors import ConfigError, ProviderError, VoicepipeError
from voicepipe.events import AudioPlayed, StageFailed, TextChunk
from voicepipe.lifecycle import aclose_all, prepare_all
from voicepipe.llm.base import Message as ChatMessage
from voicepipe.llm.base import TokenSource
from voicepipe.llm.limited import shareable
from voicepipe.llm.text import TextSource
from voicepipe.pipeline import Pipeline
from voicepipe.taskgroups import single_error
from voicepipe.text.sentences import CHUNKINGS, Chunking, check_chunking
from voicepipe.tts.base import TTSEngine

__all__ = ["ServerSettings", "create_app"]

log = logging.getLogger("voicepipe.apps.server.app")

WEB_DIR = Path(__file__).parent / "web"
ROLES = ("system", "user", "assistant")
# OpenAI's built-in voice names: stock OpenAI clients send one, so they mean "the default".
OPENAI_VOICES = frozenset(
    "alloy ash ballad coral echo fable nova onyx sage shimmer verse marin cedar".split()
)
SPEECH_FORMATS = ("pcm", "wav", "mp3")
OPENAI_PCM_RATE = 24000  # OpenAI's pcm format is 24 kHz s16le mono; clients assume it
PUBLIC_PATHS = ("/", "/healthz", "/favicon.ico")


@dataclass(frozen=True)
class ServerSettings:
    """Limits and policies: auth, CORS, request size, concurrency, defaults for requests."""

    api_key: str | None = None  # bearer token required on /v1/*; None: no auth
    cors_origins: tuple[str, ...] = ()  # origins allowed to call the API from a browser
    max_body_bytes: int = 256 * 1024
    max_sessions: int = 16  # concurrent streams; more get 429 with retry-after
    rate_per_minute: int = 120  # requests per client address and minute on /v1 POSTs; 0: off
    max_messages: int = 200
    max_input_chars: int = 4096  # /v1/audio/speech input (OpenAI's limit too)
    retry_after_s: int = 1
    chunking: Chunking = "adaptive"
    system: str | None = None
    prepare_on_startup: bool = True  # load every model in the lifespan (once, shared)

    def __repr__(self) -> str:  # never show the key, e.g. in a log line or traceback
        key = "set" if self.api_key else "None"
        return f"ServerSettings(api_key={key}, max_sessions={self.max_sessions}, ...)"


class HTTPError(Exception):
    """A request the server refuses before any streaming: becomes a JSON error response."""

    def __init__(
        self, status: int, message: str, kind: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.headers = dict(headers or {})


def error_response(
    status: int, message: str, kind: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The OpenAI-style error body: ``{"error": {"message", "type"}}``."""
    return JSONResponse(
        {"error": {"message": message, "type": kind}}, status_code=status, headers=headers
    )


class Sessions:
    """Counts streams in progress; refuses more than ``limit``. ``idle`` is set when none run."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.served = 0
        self.idle = threading.Event()  # a threading.Event so tests and other loops can wait
        self.idle.set()

    def acquire(self, retry_after: int) -> None:
        if self.active >= self.limit:
            raise HTTPError(
                429,
                f"the server is busy ({self.limit} conversations in progress): try again shortly",
                "rate_limit_exceeded",
                {"retry-after": str(retry_after)},
            )
        self.active += 1
        self.idle.clear()

    def release(self) -> None:
        self.active -= 1
        self.served += 1
        if self.active == 0:
            self.idle.set()


class RateLimit:
    """A token bucket per client address: ``per_minute`` requests, refilled continuously."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last refill)

    def take(self, client: str) -> None:
        """Spend one request for ``client``, or raise a 429 saying when to come back."""
        if self.per_minute <= 0:
            return
        now = self.clock()
        rate = self.per_minute / 60.0
        tokens, last = self._buckets.get(client, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            wait = max(1, math.ceil((1.0 - tokens) / rate))
            raise HTTPError(
                429,
                f"too many requests from this client ({self.per_minute} a minute): "
                f"try again in {wait} s",
                "rate_limit_exceeded",
                {"retry-after": str(wait)},
            )
        self._buckets[client] = (tokens - 1.0, now)
        if len(self._buckets) > 10_000:  # forget the idlest clients rather than grow forever
            for key, _ in sorted(self._buckets.items(), key=lambda kv: kv[1][1])[:5_000]:
                del self._buckets[key]


Emit = Callable[[bytes], Awaitable[None]]


class LiveResponse(Response):
    """A streamed response driven by ``produce(emit)``, cancelled at once on disconnect.

    Headers go out with the first ``emit``, so an error raised before any output still gets
    a proper status code; after that, the producer reports errors in-band. ``on_close`` runs
    however the response ends (it frees the session slot).
    """

    def __init__(
        self,
        produce: Callable[[Emit], Awaitable[None]],
        *,
        media_type: str,
        headers: Mapping[str, str] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        # Not Response.__init__: it would declare an empty body's content-length.
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)
        self.produce = produce
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def emit(data: bytes) -> None:
            nonlocal started
            if not started:
                started = True
                await send(
                    {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
                )
            if data:
                await send({"type": "http.response.body", "body": data, "more_body": True})

        try:
            async with anyio.create_task_group() as tg:

                async def watch_disconnect() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(watch_disconnect)
                try:
                    await self.produce(emit)
                except HTTPError as exc:
                    if started:
                        raise
                    await error_response(exc.status, str(exc), exc.kind, exc.headers)(
                        scope, receive, send
                    )
                else:
                    await emit(b"")
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                tg.cancel_scope.cancel()
        except OSError:
            pass  # the client went away while we were sending
        finally:
            if self.on_close is not None:
                self.on_close()


def sse(event: str, data: Mapping[str, Any]) -> bytes:
    """One Server-Sent Event: a name and a single-line JSON payload."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def error_kind(exc: BaseException) -> str:
    return type(exc).__name__


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The request's JSON object, refusing bodies over ``limit`` bytes before reading them."""
    media = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if media.lower() not in ("application/json", ""):
        raise HTTPError(
            415, f"send the body as application/json, not {media[:60]}", "invalid_request_error"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, f"request body over {limit} bytes", "request_too_large")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise HTTPError(413, f"request body over {limit} bytes", "request_too_large")
    try:
        data = json.loads(body)
    except ValueError:
        raise HTTPError(400, "the body must be JSON", "invalid_request_error") from None
    if not isinstance(data, dict):
        raise HTTPError(400, "the body must be a JSON object", "invalid_request_error")
    return data


def bad_request(message: str) -> HTTPError:
    return HTTPError(400, message, "invalid_request_error")


def choose(table: Mapping[str, Any], wanted: Any, kind: str) -> str:
    """The key of ``table`` a client asked for (the first, by default); only those are allowed."""
    if wanted is None:
        return next(iter(table))
    if isinstance(wanted, str) and wanted in table:
        return wanted
    raise bad_request(f"unknown {kind} {wanted!r}: this server offers {', '.join(table)}")


def parse_messages(body: Mapping[str, Any], limit: int) -> list[ChatMessage]:
    """``messages`` (a chat) or ``prompt`` (one user turn), checked."""
    if "messages" in body:
        raw = body["messages"]
        if not isinstance(raw, list) or not raw:
            raise bad_request("messages must be a non-empty list of {role, content} objects")
        if len(raw) > limit:
            raise bad_request(f"too many messages (at most {limit})")
        messages: list[ChatMessage] = []
        for m in raw:
            role = m.get("role") if isinstance(m, dict) else None
            content = m.get("content") if isinstance(m, dict) else None
            if role not in ROLES or not isinstance(content, str):
                raise bad_request(
                    "each message needs a role (system, user or assistant) and string content"
                )
            messages.append({"role": role, "content": content})
        if not any(m["role"] == "user" and m["content"].strip() for m in messages):
            raise bad_request("messages need at least one non-empty user message")
        return messages
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad_request("give a non-empty prompt (a string) or messages")
    return [{"role": "user", "content": prompt}]


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
        self.ttses = dict(ttses)
        self.settings = settings
        self.sessions = Sessions(settings.max_sessions)
        self.rate = RateLimit(settings.rate_per_minute)
        self._pipelines: dict[tuple[str, str, str], Pipeline] = {}
        self._speech_source = TextSource(tokens_per_second=0)

    def pipeline(self, llm: str, tts: str, chunking: Chunking) -> Pipeline:
        """One Pipeline per configuration, so each keeps learning its TTS's speed."""
        key = (llm, tts, chunking)
        pipe = self._pipelines.get(key)
        if pipe is None:
            source = self._speech_source if llm == "" else self.llms[llm]
            pipe = Pipeline(source, self.ttses[tts], chunking=chunking, system=self.settings.system)
            self._pipelines[key] = pipe
        return pipe

    async def prepare(self) -> None:
        """Load every model now, concurrently; each is shared by all sessions."""
        await prepare_all((*self.llms.values(), *self.ttses.values()))

    async def aclose(self) -> None:
        await aclose_all((*self.llms.values(), *self.ttses.values()))

    # -- routes -----------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "sessions": self.sessions.active,
                "max_sessions": self.sessions.limit,
                "served": self.sessions.served,
                "auth": self.settings.api_key is not None,
            }
        )

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
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    async def chat_stream(self, request: Request) -> Response:
        received = time.perf_counter()
        try:
            self.rate.take(request.client.host if request.client else "?")
            body = await read_json(request, self.settings.max_body_bytes)
            messages = parse_messages(body, self.settings.max_messages)
            llm = choose(self.llms, body.get("llm"), "llm")
            voice = body.get("voice") if body.get("tts") is None else body.get("tts")
            tts = choose(self.ttses, voice, "voice")
            try:
                chunking = check_chunking(body.get("chunking", self.settings.chunking))
            except ConfigError as exc:
                raise bad_request(str(exc)) from None
            self.sessions.acquire(self.settings.retry_after_s)
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
            on_close=self.sessions.release,
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
        try:
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
                        await emit(sse("error", error_payload(event.error, event.stage)))
        except VoicepipeError as exc:
            if id(exc) not in reported:
                await emit(sse("error", error_payload(exc, "pipeline")))
        except Exception as exc:
            log.exception("a chat stream failed")
            await emit(sse("error", {"stage": "server", "type": error_kind(exc), "message": ""}))
        metrics: dict[str, Any] = {}
        if run is not None and run.timeline.first("llm.request") is not None:
            metrics.update(run.metrics.as_dict())
            llm_request = run.timeline.first("llm.request")
            if llm_request is not None:
                metrics["server_to_llm_ms"] = (llm_request.t - received) * 1000
        metrics["server_ttfa_ms"] = None if first_audio is None else (first_audio - received) * 1000
        await emit(sse("metrics", metrics))
        await emit(sse("done", {"ok": run is not None and run.error is None}))

    async def speech(self, request: Request) -> Response:
        """OpenAI's ``/v1/audio/speech``: the text through the normalizer, chunker and TTS."""
        try:
            self.rate.take(request.client.host if request.client else "?")
            body = await read_json(request, self.settings.max_body_bytes)
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
            self.sessions.acquire(self.settings.retry_after_s)
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
            on_close=self.sessions.release,
        )

    def speech_voice(self, body: Mapping[str, Any]) -> str:
        """``voice`` or ``model`` names a server voice; OpenAI voice names mean the default."""
        for field_name in ("voice", "model"):
            wanted = body.get(field_name)
            if isinstance(wanted, str) and wanted in self.ttses:
                return wanted
        voice = body.get("voice")
        if voice is None or voice in OPENAI_VOICES:
            return next(iter(self.ttses))
        raise bad_request(f"unknown voice {voice!r}: this server offers {', '.join(self.ttses)}")

    async def _speak(self, pipe: Pipeline, text: str, sink: StreamSink) -> None:
        """Run the speech pipeline; a failure before any audio becomes an error status."""
        try:
            await pipe.speak(text, sink)
        except VoicepipeError as exc:
            if sink.seconds == 0:
                status = 502 if isinstance(exc, ProviderError) else 500
                raise HTTPError(status, str(exc), error_kind(exc)) from exc
            log.warning("speech stopped early: %s", exc)


def audio_payload(chunk: AudioChunk, sequence: int) -> dict[str, Any]:
    return {
        "index": chunk.text_index,
        "seq": sequence,
        "sample_rate": chunk.sample_rate,
        "format": "pcm_s16le",
        "seconds": round(chunk.duration, 4),
        "data": base64.b64encode(chunk.samples.astype("<i2").tobytes()).decode("ascii"),
    }


def error_payload(exc: VoicepipeError, stage: str) -> dict[str, Any]:
    return {
        "stage": stage,
        "type": error_kind(exc),
        "message": str(exc),
        "retryable": bool(getattr(exc, "retryable", False)),
    }


async def pcm_stream(
    audio: MemoryObjectReceiveStream[AudioChunk], rate: int
) -> AsyncIterator[bytes]:
    """s16le bytes at ``rate`` for each chunk the sink receives."""
    async with audio:
        async for chunk in audio:
            samples = convert_rate(chunk.samples, chunk.sample_rate, rate)
            yield samples.astype("<i2").tobytes()


def streaming_wav_header(rate: int) -> bytes:
    """A WAV header whose sizes are unknown (0xFFFFFFFF), as OpenAI streams it."""
    header = bytearray(wav_header(rate, 0))
    header[4:8] = b"\xff\xff\xff\xff"
    header[40:44] = b"\xff\xff\xff\xff"
    return bytes(header)


async def encode_mp3(ffmpeg: str, pcm: AsyncIterator[bytes], rate: int, emit: Emit) -> None:
    """Pipe PCM through ffmpeg and stream its MP3 output as it comes."""
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar", str(rate)]
    command += ["-ac", "1", "-i", "pipe:0", "-f", "mp3", "-b:a", "64k", "pipe:1"]
    async with await anyio.open_process(command) as process:
        assert process.stdin is not None and process.stdout is not None
        stdin, stdout = process.stdin, process.stdout

        async def feed() -> None:
            async with stdin:
                async for data in pcm:
                    await stdin.send(data)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(feed)
                async for data in stdout:
                    await emit(data)
        finally:
            if process.returncode is None:
                process.kill()


class BearerAuth:
    """Requires ``Authorization: Bearer KEY`` on the API; the page and health check are open."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self._key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith("/web/"):
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
        if not hmac.compare_digest(given, self._key):
            response = error_response(
                401,
                "missing or wrong API key: send Authorization: Bearer KEY",
                "invalid_api_key",
                {"www-authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(
    llms: TokenSource | Mapping[str, TokenSource],
    ttses: TTSEngine | Mapping[str, TTSEngine],
    settings: ServerSettings | None = None,
) -> Starlette:
    """The ASGI app. The first LLM and TTS are the defaults; clients choose among these only.

    ``app.state.server`` is the :class:`VoicepipeServer` (sessions, providers, settings).
    """
    settings = settings or ServerSettings()
    llm_table = llms if isinstance(llms, Mapping) else {llms.name: llms}
    tts_table = ttses if isinstance(ttses, Mapping) else {ttses.name: ttses}
    server = VoicepipeServer(llm_table, tts_table, settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.prepare_on_startup:
            await server.prepare()
        try:
            yield
        finally:
            await server.aclose()

    middleware: list[Middleware] = []
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
    if settings.api_key:
        middleware.append(Middleware(BearerAuth, key=settings.api_key))
    routes = [
        Route("/", server.index, methods=["GET"]),
        Route("/healthz", server.healthz, methods=["GET"]),
        Route("/v1/voices", server.voices, methods=["GET"]),
        Route("/v1/chat/stream", server.chat_stream, methods=["POST"]),
        Route("/v1/audio/speech", server.speech, methods=["POST"]),
        Mount("/web", StaticFiles(directory=WEB_DIR), name="web"),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.server = server
    return app
