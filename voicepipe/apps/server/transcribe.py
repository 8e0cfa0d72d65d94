"""``POST /v1/audio/transcriptions``: OpenAI's speech-to-text API on the server's own transcriber.

Multipart form: ``file`` (any audio ffmpeg reads; WAV needs no ffmpeg), ``model`` (accepted,
not used: the server has one transcriber), optional ``language`` and ``response_format``
(``json``: ``{"text"}``, ``text``: plain text, ``verbose_json``: with duration and language;
no per-segment timestamps). Audio that is not audio is a 400; silence gives empty text.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from voicepipe.apps.server.guards import HTTPError, RateLimit, bad_request, error_response
from voicepipe.apps.server.protocol import client_message, error_kind
from voicepipe.audio.decode import DecodeError, read_audio
from voicepipe.errors import ProviderError, VoicepipeError
from voicepipe.transport.wording import scrub
from voicepipe.voice.base import Transcriber

__all__ = ["TRANSCRIPTION_FORMATS", "transcription"]

log = logging.getLogger("voicepipe.apps.server.transcribe")

TRANSCRIPTION_FORMATS = ("json", "text", "verbose_json")


async def _upload(request: Request, limit: int, seconds: float) -> tuple[bytes, str, str]:
    """The uploaded file's bytes, the response format and the language ('' if not given).

    The whole upload must arrive within ``seconds`` (408), so a slow sender cannot hold a
    connection open.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        raise HTTPError(
            415, "send the audio as multipart/form-data with a file field", "invalid_request_error"
        )
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise HTTPError(411, "send a content-length with the upload", "invalid_request_error")
    if int(declared) > limit:
        raise HTTPError(413, f"upload over {limit} bytes", "request_too_large")
    with anyio.move_on_after(seconds) as deadline:
        try:
            form = await request.form(max_files=1, max_fields=8)
        except Exception as exc:  # starlette raises its own MultiPartException and friends
            raise bad_request(f"the form could not be read: {exc}") from None
    if deadline.cancelled_caught:
        raise HTTPError(408, f"the upload did not arrive within {seconds:g} s", "request_timeout")
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise bad_request("the form needs a file field with the audio")
    fmt = form.get("response_format", "json")
    if fmt not in TRANSCRIPTION_FORMATS:
        raise bad_request(f"response_format must be one of {', '.join(TRANSCRIPTION_FORMATS)}")
    language = form.get("language", "")
    data = await file.read()
    return data, str(fmt), language if isinstance(language, str) else ""


async def transcription(
    request: Request,
    transcriber: Transcriber | None,
    limit: int,
    limiter: RateLimit,
    seconds: float = 120.0,
) -> Response:
    """The route's body: upload -> samples -> text, in the format asked."""
    if transcriber is None:
        return error_response(
            501, "this server has no speech-to-text (start it with --stt)", "not_implemented"
        )
    try:
        limiter.take(request.client.host if request.client else "?")
        data, fmt, language = await _upload(request, limit, seconds)
        if language and language.lower() not in ("en", "english"):
            raise bad_request("this server's transcriber knows English only (language=en)")
        try:
            samples, rate = await read_audio(data)
        except DecodeError as exc:
            raise bad_request(f"the file is not audio in a known format ({exc})") from None
        text = await transcriber.transcribe(samples, rate)
    except HTTPError as exc:
        return error_response(exc.status, str(exc), exc.kind, exc.headers)
    except VoicepipeError as exc:
        status = 502 if isinstance(exc, ProviderError) else 500
        log.warning("transcription failed: %s: %s", error_kind(exc), scrub(str(exc)))
        return error_response(status, client_message(exc, "stt"), error_kind(exc))
    if fmt == "text":
        return PlainTextResponse(text + "\n")
    body: dict[str, Any] = {"text": text}
    if fmt == "verbose_json":
        body = {
            "task": "transcribe",
            "language": "english",
            "duration": round(len(samples) / rate, 3),
            "text": text,
            "segments": [],
        }
    return JSONResponse(body)
