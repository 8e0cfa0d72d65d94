"""The app behind the uvicorn configuration `voicepipe serve` uses (server_config), on loopback.

Unlike ``tests.servers.serve`` (plain uvicorn), connections here get the guarded protocol:
header and write-stall deadlines, the connection cap, half-close, proxy headers only from a
trusted proxy. Raw sockets (``raw``) play the hostile clients.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.servers import serve_config
from voicepipe.apps.server.serving import ConnectionLimits, server_config


@contextmanager
def live(
    app: Any, limits: ConnectionLimits | None = None, trusted_proxy: str | None = None
) -> Iterator[tuple[str, int]]:
    """Serve ``app`` as `voicepipe serve` would, in a thread; yield its base URL and port."""
    config = server_config(
        app, host="127.0.0.1", port=0, limits=limits, trusted_proxy=trusted_proxy, lifespan="off"
    )
    with serve_config(config) as served:
        yield served


def raw(port: int, *, receive_buffer: int | None = None, timeout: float = 5.0) -> socket.socket:
    """A plain TCP connection to the server (optionally with a tiny receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    """An HTTP/1.1 request's bytes; header names from keywords (content_type: Content-Type)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def read_all(sock: socket.socket, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection (at most ``seconds``)."""
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            piece = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return data
        if not piece:
            return data
        data += piece
    raise TimeoutError(f"the server kept the connection open for {seconds} s: {data[:200]!r}")


def closed_within(sock: socket.socket, seconds: float) -> float:
    """How long until the server closed ``sock`` (reading and dropping what it sent)."""
    started = time.monotonic()
    read_all(sock, seconds)
    return time.monotonic() - started
