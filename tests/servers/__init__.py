"""Real HTTP servers on 127.0.0.1 that speak provider protocols, for tests and benchmarks."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Literal

import uvicorn

# The ASGI interface, as the servers use it.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def read_body(receive: Receive) -> tuple[bytes, Any]:
    """The whole request body, and that body parsed as JSON (None if empty or not JSON)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    try:
        return body, json.loads(body) if body else None
    except ValueError:
        return body, None


class _Server(uvicorn.Server):
    """uvicorn's server, with an event set once startup is over (listening, or failed)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()

    def run_and_signal(self) -> None:
        try:
            self.run()
        finally:
            self.ready.set()  # it died before starting up: stop waiting


@contextmanager
def serve(app: Any, *, lifespan: Literal["on", "off"] = "off") -> Iterator[str]:
    """Serve an ASGI app with uvicorn on an ephemeral loopback port; yield its base URL.

    The server runs its own asyncio loop in a thread, whatever backend the test runs on.
    ``lifespan="on"`` runs the app's startup and shutdown there, as ``voicepipe serve`` does.
    """
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan=lifespan, access_log=False
    )
    with serve_config(config) as (url, _):
        yield url


@contextmanager
def serve_config(config: uvicorn.Config) -> Iterator[tuple[str, int]]:
    """Run uvicorn with ``config`` (port 0: an ephemeral one) in a thread; yield its base URL
    and port, and stop it after."""
    server = _Server(config)
    thread = threading.Thread(target=server.run_and_signal, name="test-uvicorn", daemon=True)
    thread.start()
    if not server.ready.wait(10) or not server.started:
        server.should_exit = True
        raise RuntimeError("test server did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(10)
