"""How provider failures read: the provider's own message from its error body, and a hint.

Error bodies are read once, bounded in size and time, by :func:`read_error_body`; the text
shown is the provider's message when its JSON has one (:func:`provider_message`), else the
start of the body. Every message passes through :func:`scrub` and every URL through
:func:`public_url`: a ``user:password@`` in a base URL, or an ``Authorization`` value a server
echoes back, never reaches the user, a log or an HTTP client.
"""

from __future__ import annotations

import json as jsonlib
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx

from voicepipe.errors import ProviderError
from voicepipe.transport.keys import redact

__all__ = [
    "body_message",
    "describe",
    "json_object",
    "media_type",
    "provider_message",
    "public_url",
    "read_error_body",
    "scrub",
    "status_error",
    "status_hint",
]

MAX_ERROR_BODY = 64 * 1024
_MAX_SHOWN = 300  # characters of a non-JSON error body that make it into a message


# user:password@ (or a bare token@) after a scheme, anywhere in a text.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@]*@")
# An auth scheme and its credentials (an echoed "Authorization: Basic YWRt...").
# The credential has a digit or symbol in it, so plain words ("Bearer tokens") are kept.
_AUTH_SCHEME = re.compile(
    r"(?i)\b(basic|bearer|digest)(\s+)(?=[a-z]*[0-9._~+/=:-])[a-z0-9._~+/=:-]{4,}"
)
# A header or field that carries a secret, and its value.
_SECRET_FIELD = re.compile(
    r"(?i)\b((?:proxy-)?authorization|x-api-key|xi-api-key|api[-_]key|(?:set-)?cookie)"
    r"(\W{0,3}?\s*[:=]\s*[\"']?)(?:(?:basic|bearer|digest)\s+)?[^\s\"',;}]+"
)


def public_url(url: str) -> str:
    """``url`` as it may be shown or stored: without ``user:password@``, query or fragment (a
    query may carry a key, ``?key=...``). Text that is not a URL is kept, credentials masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub(url)
    if not parts.scheme or not parts.netloc:
        return scrub(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment=""))


def scrub(text: str) -> str:
    """``text`` with credentials masked: URL user info, auth header values, key fields."""
    text = _URL_USERINFO.sub(r"\1***@", text)
    text = _AUTH_SCHEME.sub(r"\1\2***", text)
    return _SECRET_FIELD.sub(r"\1\2***", text)


def json_object(data: str | bytes) -> dict[str, Any] | None:
    """``data`` parsed as a JSON object, or None if it is not valid JSON or not an object."""
    try:
        value = jsonlib.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def provider_message(payload: object) -> str | None:
    """Extract the human-readable error message from a provider's JSON error body, if any.

    Knows OpenAI ``{"error": {"message"}}``, Anthropic ``{"type": "error", "error": {...}}``,
    Ollama ``{"error": "..."}``, FastAPI ``{"detail": ...}`` and flat ``{"message": ...}``.
    """
    if isinstance(payload, str):
        return payload.strip() or None
    if isinstance(payload, list):
        # FastAPI validation errors: [{"loc": [...], "msg": "...", "type": "..."}]
        parts = []
        for item in payload:
            if isinstance(item, dict) and isinstance(item.get("msg"), str):
                loc = item.get("loc")
                where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
                parts.append(f"{where}: {item['msg']}" if where else item["msg"])
            else:
                text = provider_message(item)
                if text:
                    parts.append(text)
        return "; ".join(parts) or None
    if not isinstance(payload, dict):
        return None
    # A message beside an error code wins
    # (Kokoro: {"detail": {"error": "invalid_model", "message": ...}}).
    message = payload.get("message") or payload.get("msg")
    if isinstance(message, str) and message.strip():
        return message.strip()
    for key in ("error", "detail"):
        inner = payload.get(key)
        if inner:
            text = provider_message(inner)
            if text:
                return text
            if isinstance(inner, dict):
                kind = inner.get("type") or inner.get("code") or inner.get("status")
                if kind:
                    return str(kind)
    return None


def media_type(response: httpx.Response) -> str:
    """The response's Content-Type without parameters, lower case (``""`` if none)."""
    return str(response.headers.get("content-type", "")).partition(";")[0].strip().lower()


async def read_error_body(response: httpx.Response, *, seconds: float) -> bytes:
    """Up to about 64 KiB of an unwanted body, read for at most ``seconds``.

    A body that stalls or breaks off yields what came: the status alone still says a lot.
    """
    body = b""
    try:
        with anyio.move_on_after(seconds):
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_ERROR_BODY:
                    break
    except httpx.HTTPError:
        pass
    return body


def body_message(body: bytes, reason: str) -> str:
    """What an error body says: the provider's message, else its start, else ``reason``."""
    text = body.decode("utf-8", errors="replace").strip()
    if text:
        try:
            message = provider_message(jsonlib.loads(text))
        except ValueError:
            message = None
        if message:
            return message
        return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…"
    return reason or "no error message"


def status_hint(status: int, key_env: str | None, url: str) -> str:
    """What to check after a final HTTP error ``status``; ``key_env`` names the key's variable."""
    if status in (401, 403):
        where = f"the {key_env} environment variable" if key_env else "the API key"
        return f"check {where} (is it set, current and allowed to use this model?)"
    if status == 404:
        return f"check the model name and the base URL ({url})"
    if status == 429:
        return "rate limited: wait a little, lower the request rate or check your plan's quota"
    if status in (408, 504):
        return "the server timed out; try again"
    if status >= 500:
        return "the server failed; try again later"
    return "check the request options"


def status_error(
    response: httpx.Response,
    body: bytes,
    *,
    provider: str,
    url: str,
    attempts: int,
    retryable: bool,
    key_env: str | None,
    secrets: Sequence[str],
) -> ProviderError:
    """A failed response, described by its status, the provider's message and a hint."""
    status = response.status_code
    message = body_message(body, response.reason_phrase)
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    hint = status_hint(status, key_env, public_url(url))
    text = f"{provider} returned HTTP {status}{tries}: {message} — {hint}"
    return ProviderError(
        scrub(redact(text, secrets)), provider=provider, status=status, retryable=retryable
    )


def describe(exc: BaseException, secrets: Sequence[str]) -> str:
    """A foreign exception as ``Type: text``, secrets and credentials masked."""
    text = scrub(redact(str(exc), secrets)).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
