"""Errors voicepipe raises, each with a message that says what to do next.

    VoicepipeError
     ├── ConfigError        bad option, unknown provider, missing key or model file
     ├── ProviderError      an LLM or TTS provider failed (HTTP status, bad stream, timeout)
     │    └── StreamInterrupted  the provider failed after output had started; what came is kept
     └── AudioError         sinks: device missing or failing, file cannot be written or encoded

Foreign exceptions are wrapped with ``raise ... from exc`` so the cause survives.
"""

from __future__ import annotations


class VoicepipeError(Exception):
    """Base class: every error voicepipe raises on purpose."""


class ConfigError(VoicepipeError):
    """The run is misconfigured: fix the option, key or file named in the message."""


class ProviderError(VoicepipeError):
    """An LLM or TTS provider failed.

    ``provider`` names it (e.g. ``"openai"``), ``status`` is the HTTP status when there was one,
    ``retryable`` says whether trying the same request again may succeed.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.retryable = retryable


class StreamInterrupted(ProviderError):
    """The provider failed mid-stream, after some output was delivered; it is not retried."""


class AudioError(VoicepipeError):
    """An audio sink failed: no output device, an unwritable path, a missing encoder."""
