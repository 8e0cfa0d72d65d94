"""The base of every HTTP provider: its client, key, timeouts and retries, and its requests.

A vendor class names itself, its key and its paths; :class:`HTTPProvider` attaches the key,
sends through :func:`~voicepipe.transport.stream.open_stream` (retries, first-byte and idle
timeouts, errors in the provider's words) and never shows the key, not even in ``repr``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing, asynccontextmanager
from typing import ClassVar, TypedDict, TypeVar, Unpack

import httpx

from voicepipe.lifecycle import Lifecycle
from voicepipe.transport.keys import VendorKey, provider_key
from voicepipe.transport.settings import DEFAULT_RETRY, DEFAULT_TIMEOUTS, RetryPolicy, Timeouts
from voicepipe.transport.sse import SSEFrame, iter_sse_json
from voicepipe.transport.stream import RequestBody, iter_body, open_stream
from voicepipe.transport.wording import public_url

__all__ = ["ClientOwner", "HTTPOptions", "HTTPProvider"]

Owner = TypeVar("Owner", bound="ClientOwner")


class ClientOwner(Lifecycle):
    """Holds a provider's httpx client: the caller's, or one created on first use and reused.

    Reusing one client keeps connections alive between sentences (no new TLS handshake per
    request). Close an owned client with ``aclose()`` or ``async with provider:``.
    """

    def __init__(self, client: httpx.AsyncClient | None) -> None:
        self._client = client
        self._owns_client = client is None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None or (self._owns_client and self._client.is_closed):
            self._client = httpx.AsyncClient()
        return self._client

    async def aclose(self) -> None:
        """Close the client if the provider created it (a caller's client is left open)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()


class HTTPOptions(TypedDict, total=False):
    """The connection options every HTTP provider's constructor takes.

    ``client``: an httpx client to use (left open); by default one is made and reused.
    ``timeouts``: per-phase limits (:class:`Timeouts`). ``retry``: the :class:`RetryPolicy`.
    """

    client: httpx.AsyncClient | None
    timeouts: Timeouts
    retry: RetryPolicy


class HTTPProvider(ClientOwner):
    """A provider behind an HTTP API, requested through :meth:`_post` with its key attached.

    Subclasses set ``name`` (the label in errors), ``key`` (whose key, None for no key),
    ``key_header`` (``Authorization`` sends ``Bearer KEY``, any other header the bare key) and
    ``shown`` (the attributes ``repr`` shows; never the key).
    """

    name: str = "http"
    key: ClassVar[VendorKey | None] = None
    key_header: ClassVar[str] = "Authorization"
    shown: ClassVar[tuple[str, ...]] = ("base_url",)

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        ClientOwner.__init__(self, client)  # one client reused across requests
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts
        self.retry = retry
        # The vendor's own API: only it gets the key from the environment.
        self.official = self.key is not None and self.key.is_official(self.base_url)
        self._api_key, self._key_env = provider_key(
            api_key,
            official=self.official,
            var=self.key.env if self.key is not None else None,
            provider=self.name,
        )

    def __repr__(self) -> str:
        # A base URL's user:password@ is a credential too: never shown (issue 18).
        fields = ", ".join(
            f"{field}={public_url(value) if field == 'base_url' else value!r}"
            for field in self.shown
            for value in [getattr(self, field)]
        )
        return f"{type(self).__name__}({fields})"

    def _secrets(self) -> tuple[str, ...]:
        """What must never appear in a message: the key, if there is one."""
        return (self._api_key,) if self._api_key else ()

    def _key_headers(self) -> dict[str, str]:
        if not self._api_key:
            return {}
        bearer = self.key_header.lower() == "authorization"
        return {self.key_header: f"Bearer {self._api_key}" if bearer else self._api_key}

    @asynccontextmanager
    async def _post(
        self, path: str, *, headers: Mapping[str, str] | None = None, **body: Unpack[RequestBody]
    ) -> AsyncIterator[httpx.Response]:
        """POST to ``base_url + path`` with the key; yield the 2xx response, body unread.

        :raises ConfigError: the base URL is not an http(s) URL.
        :raises ProviderError: no 2xx response, after the retries the policy allows.
        """
        async with open_stream(
            self._http(),
            "POST",
            f"{self.base_url}{path}",
            provider=self.name,
            headers={**(headers or {}), **self._key_headers()},
            timeouts=self.timeouts,
            retry=self.retry,
            secrets=self._secrets(),
            key_env=self._key_env,
            **body,
        ) as response:
            yield response

    def _body(self, response: httpx.Response) -> AsyncGenerator[bytes, None]:
        """The response's body chunks, under the first-byte and idle timeouts."""
        return iter_body(response, provider=self.name, idle_timeout=self.timeouts.idle)

    async def _events(
        self, path: str, payload: object, headers: Mapping[str, str] | None = None
    ) -> AsyncGenerator[SSEFrame, None]:
        """POST ``payload`` to an SSE endpoint; yield each event that has data, data parsed."""
        async with self._post(
            path, json=payload, headers={"Accept": "text/event-stream", **(headers or {})}
        ) as response:
            frames = iter_sse_json(
                response,
                provider=self.name,
                idle_timeout=self.timeouts.idle,
                secrets=self._secrets(),
            )
            async with aclosing(frames):
                async for frame in frames:
                    yield frame
