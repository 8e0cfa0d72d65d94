"""A fake OpenAI transcription server: ``POST .../audio/transcriptions`` answers known text.

The multipart form is parsed by hand (byte for byte what the client sent); each request is
kept in ``app.requests`` with its form fields, the uploaded file and the WAV's rate and
length. ``app.text`` is the transcription; ``app.error_status`` makes it fail OpenAI's way,
``app.busy`` answers the next requests 503 and ``app.answer_delay`` holds every answer back.
"""

from __future__ import annotations

import io
import json
import re
import threading
import wave
from dataclasses import dataclass, field

import anyio

from tests.servers import Receive, Scope, Send, read_body


@dataclass
class Upload:
    """One transcription request as the server saw it."""

    path: str
    headers: dict[str, str]
    fields: dict[str, str]
    file_name: str
    file_type: str
    file: bytes
    sample_rate: int = 0
    channels: int = 0
    seconds: float = 0.0


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[dict[str, str], bytes]]:
    """``{name: (part headers, part body)}`` of a multipart/form-data body."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise ValueError(f"not multipart: {content_type!r}")
    boundary = b"--" + match.group(1).encode()
    parts: dict[str, tuple[dict[str, str], bytes]] = {}
    for raw in body.split(boundary)[1:]:
        if raw.startswith(b"--"):
            break
        head, _, content = raw.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        name = re.search(r'name="([^"]*)"', headers.get("content-disposition", ""))
        if name is not None:
            parts[name.group(1)] = (headers, content.removesuffix(b"\r\n"))
    return parts


@dataclass
class FakeTranscriber:
    """The ASGI app; ``received`` is set at each complete request."""

    text: str = "What time is it?"
    error_status: int | None = None
    error_message: str = "Invalid file format."
    busy: int = 0  # this many more requests are answered 503 (then it transcribes)
    answer_delay: float = 0.0  # seconds before any answer starts
    requests: list[Upload] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body, _ = await read_body(receive)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["method"] != "POST" or not scope["path"].endswith("/audio/transcriptions"):
            await self._json(send, 404, {"error": {"message": f"no route {scope['path']}"}})
            return
        parts = parse_multipart(body, headers.get("content-type", ""))
        file_headers, file = parts.get("file", ({}, b""))
        disposition = re.search(r'filename="([^"]*)"', file_headers.get("content-disposition", ""))
        upload = Upload(
            path=scope["path"],
            headers=headers,
            fields={k: v.decode() for k, (_, v) in parts.items() if k != "file"},
            file_name=disposition.group(1) if disposition else "",
            file_type=file_headers.get("content-type", ""),
            file=file,
        )
        try:
            with wave.open(io.BytesIO(file), "rb") as w:
                upload.sample_rate = w.getframerate()
                upload.channels = w.getnchannels()
                upload.seconds = w.getnframes() / w.getframerate()
        except (wave.Error, EOFError):
            pass  # not a WAV: the test sees sample_rate == 0
        self.requests.append(upload)
        self.received.set()
        await anyio.sleep(self.answer_delay)
        if self.busy > 0:
            self.busy -= 1
            await self._json(send, 503, {"error": {"message": "Server busy, try again."}})
            return
        if self.error_status is not None:
            error = {"message": self.error_message, "type": "invalid_request_error"}
            await self._json(send, self.error_status, {"error": error})
            return
        await self._json(send, 200, {"text": self.text})

    async def _json(self, send: Send, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})
