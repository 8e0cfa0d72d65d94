"""A loopback TTS server speaking OpenAI ``/v1/audio/speech`` and ElevenLabs ``.../stream``.

Raw ASGI, so tests control every byte: pacing, one-byte chunks, a held or dropped body,
429s before success, provider-shaped JSON errors. Audio is a deterministic sine whose
length depends on the text (``speech_samples``). Used by tests and benchmarks alike.
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import anyio
import numpy as np
import numpy.typing as npt

from tests.servers import Receive, Scope, Send, read_body

SECONDS_PER_CHARACTER = 0.01
FREQUENCY = 440.0
AMPLITUDE = 8000


def speech_samples(text: str, sample_rate: int) -> npt.NDArray[np.int16]:
    """The audio the server 'speaks' for ``text``: a 440 Hz sine, 10 ms per character."""
    n = round(len(text) * SECONDS_PER_CHARACTER * sample_rate)
    t = np.arange(n) / sample_rate
    return np.round(AMPLITUDE * np.sin(2 * math.pi * FREQUENCY * t)).astype(np.int16)


def streaming_wav(pcm: bytes, sample_rate: int, channels: int = 1) -> bytes:
    """A WAV as streaming servers write it: 0xFFFFFFFF sizes and an odd-sized LIST before data."""
    info = b"INFO" + b"ISFT" + struct.pack("<I", 13) + b"Lavf61.7.100\x00" + b"\x00"
    fmt = struct.pack(
        "<HHIIHH", 1, channels, sample_rate, sample_rate * 2 * channels, 2 * channels, 16
    )
    return (
        b"RIFF\xff\xff\xff\xffWAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"LIST"
        + struct.pack("<I", len(info) - 1)  # odd size: a pad byte follows
        + info
        + b"data\xff\xff\xff\xff"
        + pcm
    )


_FFMPEG_FORMATS = {
    "mp3": ["-f", "mp3"],
    "flac": ["-f", "flac"],
    "opus": ["-c:a", "libopus", "-f", "ogg"],
    "aac": ["-c:a", "aac", "-f", "adts"],
}


def encode(samples: npt.NDArray[np.int16], sample_rate: int, fmt: str) -> bytes:
    """Encode mono int16 audio with the ffmpeg program (mp3, flac, opus, aac)."""
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar"]
    command += [str(sample_rate), "-ac", "1", "-i", "pipe:0", *_FFMPEG_FORMATS[fmt], "pipe:1"]
    return subprocess.run(command, input=samples.tobytes(), capture_output=True, check=True).stdout


@dataclass
class Behaviour:
    """Knobs for the next requests; change them between requests, not during one."""

    first_byte_delay: float = 0.0  # seconds before the response starts
    chunk_size: int = 4096  # bytes per body chunk (1: one-byte network chunks)
    chunk_delay: float = 0.0  # seconds between body chunks
    hold_after: int | None = None  # send this many bytes, then wait for `release`
    drop_after: int | None = None  # send this many bytes, then abort the connection
    failures: int = 0  # answer this many requests with `failure_status` first
    failure_status: int = 429
    retry_after: str | None = "0"  # retry-after header on failures (None: omit)
    error_status: int | None = None  # answer every request with this status
    error_style: str = "openai"  # openai | elevenlabs | kokoro: shape of error bodies
    error_message: str = "something went wrong"
    api_key: str | None = None  # if set, requests must carry it
    wav_channels: int = 1
    openai_rate: int = 24000  # sample rate of /v1/audio/speech audio (openedai-speech: 22050)
    content_type: str | None = None  # override the audio Content-Type


@dataclass
class Recorded:
    """One request as the server saw it, and how its response ended."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    bytes_sent: int = 0
    completed: bool = False
    # time.perf_counter() when the request arrived and when the first body byte went out
    received_at: float = field(default_factory=time.perf_counter)
    first_byte_at: float | None = None
    disconnected: threading.Event = field(default_factory=threading.Event)


class _Dropped(Exception):
    """Raised inside the app to make uvicorn cut the connection mid-body."""


class TTSServer:
    """The ASGI app; ``behaviour`` is read per request, ``requests`` records each one."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self._behaviour = behaviour or Behaviour()
        self.requests: list[Recorded] = []
        self.release = threading.Event()  # lets a held body continue
        self.received = threading.Event()  # set when the first request has been recorded
        self._failures_sent = 0
        self._encoded: dict[tuple[str, str, int], bytes] = {}

    @property
    def behaviour(self) -> Behaviour:
        """The knobs for the next requests; assigning new ones restarts the failure count."""
        return self._behaviour

    @behaviour.setter
    def behaviour(self, behaviour: Behaviour) -> None:
        self._behaviour = behaviour
        self._failures_sent = 0

    def error_body(self, status: int) -> dict[str, Any]:
        """The provider-shaped JSON error for ``status``."""
        b = self.behaviour
        kind = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status, "server_error")
        if b.error_style == "elevenlabs":
            return {"detail": {"status": kind, "message": b.error_message}}
        if b.error_style == "kokoro":
            return {"detail": {"error": kind, "message": b.error_message, "type": "server_error"}}
        return {"error": {"message": b.error_message, "type": kind, "param": None, "code": kind}}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        _, payload = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        record = Recorded(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(scope["query_string"].decode())),
            headers=headers,
            json=payload,
        )
        self.requests.append(record)
        self.received.set()
        b = self.behaviour
        if b.api_key is not None and b.api_key not in (
            headers.get("xi-api-key"),
            headers.get("authorization", "").removeprefix("Bearer "),
        ):
            await self._json(send, 401, self.error_body(401))
            return
        if self._failures_sent < b.failures:
            self._failures_sent += 1
            extra = [(b"retry-after", b.retry_after.encode())] if b.retry_after else []
            await self._json(send, b.failure_status, self.error_body(b.failure_status), extra)
            return
        if b.error_status is not None:
            await self._json(send, b.error_status, self.error_body(b.error_status))
            return
        if b.first_byte_delay:
            await anyio.sleep(b.first_byte_delay)
        audio, content_type = await self._audio(record)
        if audio is None:
            await self._json(send, 404, {"detail": "Not Found"})
            return
        await self._stream(audio, b.content_type or content_type, record, receive, send)

    async def _audio(self, record: Recorded) -> tuple[bytes | None, str]:
        b = self.behaviour
        payload = record.json if isinstance(record.json, dict) else {}
        if record.path == "/v1/audio/speech":
            text = str(payload.get("input", ""))
            fmt = str(payload.get("response_format", "mp3"))
            rate = b.openai_rate
        elif record.path.startswith("/v1/text-to-speech/") and record.path.endswith("/stream"):
            text = str(payload.get("text", ""))
            codec, _, rest = record.query.get("output_format", "mp3_44100_128").partition("_")
            fmt, rate = codec, int(rest.split("_")[0])
        else:
            return None, ""
        samples = speech_samples(text, rate)
        if fmt == "pcm":
            return samples.tobytes(), "audio/pcm"
        if fmt == "wav":
            frames = np.repeat(samples, b.wav_channels) if b.wav_channels > 1 else samples
            return streaming_wav(frames.tobytes(), rate, b.wav_channels), "audio/wav"
        key = (text, fmt, rate)
        if key not in self._encoded:
            self._encoded[key] = await anyio.to_thread.run_sync(encode, samples, rate, fmt)
        return self._encoded[key], "audio/mpeg" if fmt == "mp3" else f"audio/{fmt}"

    async def _stream(
        self, audio: bytes, content_type: str, record: Recorded, receive: Receive, send: Send
    ) -> None:
        b = self.behaviour

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            record.disconnected.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_disconnect)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", content_type.encode())],
                }
            )
            position = 0
            while position < len(audio) and not record.disconnected.is_set():
                end = min(position + b.chunk_size, len(audio))
                for limit in (b.hold_after, b.drop_after):
                    if limit is not None and position < limit:
                        end = min(end, limit)
                if b.drop_after is not None and position >= b.drop_after:
                    raise _Dropped("dropping the connection on purpose")
                if b.hold_after is not None and position == b.hold_after:
                    await anyio.to_thread.run_sync(self._wait_for_release, record)
                    if record.disconnected.is_set():
                        break
                if record.first_byte_at is None:
                    record.first_byte_at = time.perf_counter()
                await send(
                    {"type": "http.response.body", "body": audio[position:end], "more_body": True}
                )
                record.bytes_sent = position = end
                if b.chunk_delay:
                    await anyio.sleep(b.chunk_delay)
            if b.drop_after is not None and position >= b.drop_after:
                raise _Dropped("dropping the connection on purpose")
            # Recorded before the last message, which is what ends the body for the client:
            # a client that has read the whole body finds its request completed here.
            record.completed = position >= len(audio) and not record.disconnected.is_set()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            tg.cancel_scope.cancel()

    def _wait_for_release(self, record: Recorded) -> None:
        while not self.release.wait(0.01) and not record.disconnected.is_set():
            pass

    @staticmethod
    async def _json(
        send: Send, status: int, body: object, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), *(extra or [])]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
