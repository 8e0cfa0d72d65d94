"""What the server refuses before any work: auth, session slots, per-client rate, bad requests."""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections.abc import Callable, Mapping

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

PUBLIC_PATHS = ("/", "/healthz", "/favicon.ico")


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
