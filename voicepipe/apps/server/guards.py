"""What the server refuses before any work: auth, session slots, per-client rate, bad requests,
requests for another host (DNS rebinding) and browser requests from other origins."""

from __future__ import annotations

import hmac
import ipaddress
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PUBLIC_PATHS = ("/", "/healthz", "/favicon.ico")
# Names that always mean this machine: a page on another site cannot make a browser send them.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


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
    """Counts streams in progress; refuses more than ``limit``, and more than ``per_client``
    from one client address, so one client cannot hold every slot. ``idle`` is set when none
    run, ``busy`` while any does."""

    def __init__(self, limit: int, per_client: int | None = None) -> None:
        self.limit = limit
        self.per_client = per_client or limit
        self.active = 0
        self.served = 0
        self._by_client: Counter[str] = Counter()
        self.idle = threading.Event()  # a threading.Event so tests and other loops can wait
        self.idle.set()
        self.busy = threading.Event()

    def acquire(self, retry_after: int, client: str = "?") -> Callable[[], None]:
        """Take a slot for ``client``; returns the call that gives it back (once)."""
        if self.active >= self.limit:
            raise HTTPError(
                429,
                f"the server is busy ({self.limit} conversations in progress): try again shortly",
                "rate_limit_exceeded",
                {"retry-after": str(retry_after)},
            )
        if self._by_client[client] >= self.per_client:
            raise HTTPError(
                429,
                f"this client already has {self.per_client} conversations in progress: "
                "finish one first",
                "rate_limit_exceeded",
                {"retry-after": str(retry_after)},
            )
        self.active += 1
        self._by_client[client] += 1
        self.idle.clear()
        self.busy.set()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._release(client)

        return release

    def _release(self, client: str) -> None:
        self.active -= 1
        self.served += 1
        self._by_client[client] -= 1
        if self._by_client[client] <= 0:
            del self._by_client[client]
        if self.active == 0:
            self.busy.clear()
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


def bad_request(message: str) -> HTTPError:
    return HTTPError(400, message, "invalid_request_error")


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


def host_name(host_header: str) -> str:
    """The host of a ``Host`` header, without port or IPv6 brackets, lower case ("" when it
    is malformed)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host, _, port = host[1:].partition("]")
        return host if port == "" or (port[:1] == ":" and port[1:].isdigit()) else ""
    if host.count(":") == 1:
        host, _, port = host.partition(":")
        return host if port.isdigit() else ""
    return host


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class HostAllowList:
    """Which ``Host`` headers name this server: exact names, ``*.domain`` suffixes, ``*`` for
    any, and (``any_ip``) every IP literal, which DNS rebinding cannot forge since it needs a
    name."""

    def __init__(self, hosts: Iterable[str], *, any_ip: bool = False) -> None:
        names = {host_name(h) for h in hosts}
        self.any = "*" in names
        self.any_ip = any_ip
        self.suffixes = tuple(n[1:] for n in names if n.startswith("*."))
        self.names = frozenset(n for n in names if not n.startswith("*"))

    def allows(self, host_header: str) -> bool:
        if self.any:
            return True
        host = host_name(host_header)
        if not host:
            return False
        if host in self.names or (self.any_ip and is_ip(host)):
            return True
        return any(host.endswith(suffix) for suffix in self.suffixes)


class HostGuard:
    """Refuses requests whose ``Host`` is not this server's (400), so a page on a name that
    was rebound to this machine's address cannot drive it."""

    def __init__(self, app: ASGIApp, hosts: HostAllowList) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.hosts.allows(Headers(scope=scope).get("host", "")):
            response = error_response(
                400,
                "this server does not answer to that host name (start it with --allow-host NAME)",
                "invalid_request_error",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class OriginGuard:
    """Refuses POSTs a browser sends from another origin unless CORS allows that origin (403).

    A form or a ``no-cors`` fetch from another site needs no preflight; this stops it running
    work (a transcription, a conversation) even though it could not read the answer.
    """

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None or "*" in self.allowed or origin in self.allowed:
            await self.app(scope, receive, send)
            return
        try:
            same = urlsplit(origin).netloc.lower() == headers.get("host", "").lower()
        except ValueError:
            same = False
        if same:
            await self.app(scope, receive, send)
            return
        response = error_response(
            403,
            "requests from other sites' pages are refused (allow one with --cors-origin)",
            "permission_error",
        )
        await response(scope, receive, send)


# The page loads its own script and style only, may not be framed, and talks to this server.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; media-src 'self' blob:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


class SecurityHeaders:
    """Adds headers that stop sniffing, framing and referrer leaks to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
