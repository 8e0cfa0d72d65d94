"""API keys: which key a provider sends to which host, and keeping keys out of every message.

A vendor's key from the environment goes only to that vendor's own domain, so an
``OPENAI_API_KEY`` never reaches a compatible third-party server; an explicit key goes where
the caller points it: ``api_key=`` in the library, ``--llm-key-env VAR`` (the variable's name,
never the key) on the command line, or ``OPENAI_BASE_URL`` set beside ``OPENAI_API_KEY``, which
pairs the two as the official OpenAI SDK does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from voicepipe.errors import ConfigError, MissingKey

__all__ = [
    "OPENAI_BASE_ENV",
    "OPENAI_BASE_URL",
    "OPENAI_KEY",
    "VendorKey",
    "env_key",
    "named_key",
    "on_domain",
    "openai_endpoint",
    "provider_key",
    "redact",
    "redacted_cause",
]


def redact(text: str, secrets: Sequence[str]) -> str:
    """Return ``text`` with every non-empty secret replaced by ``***``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class _RedactedCause(Exception):
    """Stands in for a foreign exception whose text contained a secret."""


def redacted_cause(exc: BaseException, secrets: Sequence[str]) -> BaseException:
    """Return ``exc``, or a redacted stand-in if its str or repr would reveal a secret."""
    text = f"{exc}\n{exc!r}"
    if any(secret and secret in text for secret in secrets):
        return _RedactedCause(f"{type(exc).__name__}: {redact(str(exc), secrets)}")
    return exc


def env_key(var: str, provider: str) -> str:
    """Return the API key in environment variable ``var``, or raise MissingKey naming it."""
    value = os.environ.get(var, "").strip()
    if not value:
        raise MissingKey(provider, var)
    return value


# What an environment variable's name conventionally looks like; anything else given where a
# name belongs may be a pasted key, and is never repeated in a message.
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def named_key(var: str, provider: str, option: str = "the key's variable") -> str:
    """The key in the environment variable the user named (``--llm-key-env VAR``).

    Only the name travels on the command line (where process lists and shell history would
    show a key). An unset conventional name (``GROQ_API_KEY``) is MissingKey naming it; an
    unset name that is not one (lower case, dashes: perhaps the key itself pasted by mistake)
    is a ConfigError that does not repeat it.
    """
    name = var.strip()
    value = os.environ.get(name, "").strip() if name else ""
    if value:
        return value
    if _ENV_NAME.fullmatch(name):
        raise MissingKey(provider, name)
    raise ConfigError(
        f"{option} takes the name of an environment variable that holds the key (such as "
        "GROQ_API_KEY), and no variable by the given name is set; put the key in the "
        "environment, never on the command line"
    )


def provider_key(
    api_key: str | None, *, official: bool, var: str | None, provider: str
) -> tuple[str | None, str | None]:
    """The key to send (None: none) and the environment variable it came from (None: not one).

    An explicit ``api_key`` wins. Otherwise only the provider's official host gets the key in
    ``var`` (MissingKey if it is unset), so that key never reaches a third-party server.
    """
    if api_key is not None or not official or var is None:
        return api_key or None, None
    return env_key(var, provider), var


def on_domain(base_url: str, domain: str) -> bool:
    """Whether ``base_url``'s host is ``domain`` or one of its subdomains."""
    try:
        host = (urlsplit(base_url).hostname or "").lower()
    except ValueError:  # e.g. an unclosed IPv6 bracket: not the vendor's host
        return False
    return bool(domain) and (host == domain or host.endswith("." + domain))


@dataclass(frozen=True)
class VendorKey:
    """A vendor's API key: the variable that holds it and the domain that alone may receive it."""

    env: str
    domain: str

    def is_official(self, base_url: str) -> bool:
        """Whether ``base_url`` is the vendor's own API (the one rule for every provider)."""
        return on_domain(base_url, self.domain)


OPENAI_BASE_URL = "https://api.openai.com/v1"
# Chat, speech and transcription share it: one rule for where OPENAI_API_KEY may go.
OPENAI_KEY = VendorKey("OPENAI_API_KEY", "api.openai.com")
OPENAI_BASE_ENV = "OPENAI_BASE_URL"


def openai_endpoint(base_url: str | None, api_key: str | None) -> tuple[str, str | None]:
    """Where an OpenAI client sends its requests and the key it sends, as the official SDK
    decides: an explicit ``base_url`` (with ``api_key`` only); else ``$OPENAI_BASE_URL`` with
    ``$OPENAI_API_KEY`` (the user paired them, so the key may go there; unset: no key); else
    api.openai.com, which requires ``$OPENAI_API_KEY`` (see :func:`provider_key`).
    """
    if base_url:
        return base_url, api_key
    env_base = os.environ.get(OPENAI_BASE_ENV, "").strip()
    if not env_base:
        return OPENAI_BASE_URL, api_key
    if api_key is None:
        api_key = os.environ.get(OPENAI_KEY.env, "").strip() or None
    return env_base, api_key
