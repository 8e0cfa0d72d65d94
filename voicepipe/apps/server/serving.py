"""`voicepipe serve`'s connections: uvicorn, with deadlines and a cap a hostile client cannot
outlast.

uvicorn's HTTP/1.1 protocol (h11) holds a connection for as long as its client likes: while it
trickles the request's headers, while it does not read the response, and past the process's
file descriptors. :func:`guarded_protocol` adds, per connection:

- a **header deadline**: a request's headers must be in within ``header_timeout_s`` of the
  connection opening (or of its previous response), or it is closed;
- a **write-stall deadline**: a response its client has not drained for ``write_stall_s`` is
  aborted, which the app sees as a disconnect, so the session slot is freed;
- a **cap** of ``max_connections``: one more closes the connection that has waited longest
  without sending a request (or itself, if every connection is busy), so idle sockets cannot
  use up the file descriptors that ``/healthz`` and real clients need;
- a response that ends while its request body is still coming closes the connection (nobody
  will read the rest);
- **half-close**: a client that shuts down its sending side after its request still gets the
  whole response, then the connection is closed.

:func:`server_config` is the uvicorn configuration ``voicepipe serve`` runs: that protocol,
proxy headers (``X-Forwarded-For``) trusted only from ``trusted_proxy``, and no server banner.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "ConnectionLimits",
    "descriptor_limit",
    "fitted_limits",
    "guarded_protocol",
    "server_config",
]

log = logging.getLogger("voicepipe.apps.server.serving")

FD_RESERVE = 32  # descriptors kept for the process itself: models, logs, sqlite, ffmpeg


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a connection may dawdle, and how many may be open."""

    header_timeout_s: float = 10.0  # from opening (or the last response) to a request's headers
    write_stall_s: float = 15.0  # a response not drained for this long is aborted
    keep_alive_s: float = 5.0  # an idle keep-alive connection is closed after this
    max_connections: int = 256
    # Connections accepted at once (and the kernel's queue): asyncio takes up to this many
    # before any of them is looked at, so it must fit in the descriptors the cap leaves free.
    backlog: int = 2048


def descriptor_limit() -> int:
    """The process's file descriptor limit, its soft limit first raised to the hard one (up
    to 4096), as servers usually do."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return 4096 if soft == resource.RLIM_INFINITY else soft


def fitted_limits(descriptors: int, max_connections: int | None = None) -> ConnectionLimits:
    """Limits that keep the server within ``descriptors`` file descriptors.

    :data:`FD_RESERVE` stay for the process; of the rest, half go to connections (each may
    need one more, upstream: at least 4, at most 1000) and what is left bounds the accept
    backlog, so a burst of idle sockets never reaches "Too many open files".
    """
    free = max(0, descriptors - FD_RESERVE)
    cap = max_connections or max(4, min(1000, free // 2))
    return ConnectionLimits(max_connections=cap, backlog=max(8, min(2048, free - cap)))


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol with ``limits`` enforced (see the module docstring)."""

    class GuardedProtocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_timer: asyncio.TimerHandle | None = None
            self._stall_timer: asyncio.TimerHandle | None = None
            self.waiting_since = 0.0

        # -- connection lifecycle ------------------------------------------------------------

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._await_request()
            if len(self.connections) > limits.max_connections:
                self._make_room()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_timers()
            super().connection_lost(exc)

        def eof_received(self) -> bool | None:  # type: ignore[override]
            """Keep writing to a client that closed its sending side after its request."""
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete and not cycle.more_body:
                cycle.keep_alive = False  # nothing more can come in: close after the response
                return True
            return None

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # a request's headers are in
                self._cancel(self._header_timer)
                self._header_timer = None

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.transport.is_closing():
                return
            if self.conn.their_state is h11.SEND_BODY:  # a body nobody will read
                self._close()
                return
            self._await_request()

        # -- writing -------------------------------------------------------------------------

        def pause_writing(self) -> None:
            super().pause_writing()
            if self._stall_timer is None:
                self._stall_timer = self.loop.call_later(limits.write_stall_s, self._stalled)

        def resume_writing(self) -> None:
            super().resume_writing()
            self._cancel(self._stall_timer)
            self._stall_timer = None

        def _stalled(self) -> None:
            self._stall_timer = None
            log.info(
                "a client read nothing for %g s: its connection is closed", limits.write_stall_s
            )
            self.transport.abort()  # the app sees a disconnect; the session ends

        # -- waiting for a request -----------------------------------------------------------

        def _await_request(self) -> None:
            self.waiting_since = self.loop.time()
            self._cancel(self._header_timer)
            self._header_timer = self.loop.call_later(limits.header_timeout_s, self._too_slow)

        def _too_slow(self) -> None:
            self._header_timer = None
            if self.waiting():
                self._close()

        def waiting(self) -> bool:
            """Whether no request is in progress (not even its first bytes were parsed)."""
            in_cycle = self.cycle is not None and not self.cycle.response_complete
            return not in_cycle and self.conn.their_state is h11.IDLE

        def _make_room(self) -> None:
            idle = [
                c
                for c in self.connections
                if isinstance(c, GuardedProtocol) and c is not self and c.waiting()
            ]
            if not idle:
                log.warning("%d connections are busy: a new one is refused", len(self.connections))
                self._close()
                return
            min(idle, key=lambda c: c.waiting_since)._close()

        def _close(self) -> None:
            self._cancel_timers()
            if self.transport.is_closing():
                return
            try:
                self.conn.send(h11.ConnectionClosed())
            except h11.LocalProtocolError:
                pass  # mid-message: closing is all that is left
            self.transport.close()

        def _cancel_timers(self) -> None:
            self._cancel(self._header_timer)
            self._cancel(self._stall_timer)
            self._header_timer = self._stall_timer = None

        @staticmethod
        def _cancel(timer: asyncio.TimerHandle | None) -> None:
            if timer is not None:
                timer.cancel()

    return GuardedProtocol


def server_config(
    app: Any,
    *,
    host: str,
    port: int,
    limits: ConnectionLimits | None = None,
    trusted_proxy: str | None = None,
    access_log: bool = False,
    lifespan: str = "auto",
) -> uvicorn.Config:
    """uvicorn's configuration for ``app``: the guarded protocol and its limits.

    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only from ``trusted_proxy``
    (addresses or networks, comma-separated); without it they are ignored, so a client cannot
    pick its own address and slip past the per-client limits.
    """
    limits = limits or ConnectionLimits()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(limits),
        proxy_headers=trusted_proxy is not None,
        forwarded_allow_ips=trusted_proxy or "127.0.0.1",
        timeout_keep_alive=int(max(1, limits.keep_alive_s)),
        limit_concurrency=limits.max_connections + 1,  # uvicorn counts the new one too
        backlog=limits.backlog,
        server_header=False,
        log_level="info" if access_log else "warning",
        access_log=access_log,
        timeout_graceful_shutdown=5,
        lifespan=lifespan,  # type: ignore[arg-type]
    )
