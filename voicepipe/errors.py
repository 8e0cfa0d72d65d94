"""Errors voicepipe raises, each with a message that says what to do next.

    VoicepipeError
     ├── ConfigError        bad option, unknown provider, missing key or model file
     │    ├── MissingKey        an API key's environment variable is unset   (.provider, .env_var)
     │    └── MissingModel      a model package or file is not there          (.kind, .package)
     ├── ProviderError      an LLM or TTS provider failed (HTTP status, bad stream, timeout)
     │    └── StreamInterrupted  the provider failed after output had started; what came is kept
     └── AudioError         sinks: device missing or failing, file cannot be written or encoded
          └── NoDevice          no output (or input) device at all            (.direction)

Errors carry facts as typed attributes; the library words them for a Python caller and the
CLI adds hints in terms of its own flags (``voicepipe.cli.hints``), so no caller parses
messages. Foreign exceptions are wrapped with ``raise ... from exc`` so the cause survives.
"""

from __future__ import annotations


class VoicepipeError(Exception):
    """Base class: every error voicepipe raises on purpose."""


class ConfigError(VoicepipeError):
    """The run is misconfigured: fix the option, key or file named in the message."""


class MissingKey(ConfigError):
    """A provider needs an API key and the environment variable that holds it is unset."""

    def __init__(self, provider: str, env_var: str) -> None:
        super().__init__(
            f"{provider} needs an API key: the environment variable {env_var} is unset"
        )
        self.provider = provider
        self.env_var = env_var


class MissingModel(ConfigError):
    """A model the run needs is not installed: ``kind`` is e.g. ``"llm"`` or ``"tts"``,
    ``package`` the pip package that carries the default one."""

    def __init__(self, message: str, *, kind: str, package: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.package = package


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


class NoDevice(AudioError):
    """There is no audio device for ``direction`` (``"output"`` or ``"input"``) at all,
    or PortAudio itself is missing (``portaudio_missing``)."""

    def __init__(self, direction: str, *, portaudio_missing: bool = False) -> None:
        what = "speaker" if direction == "output" else "microphone"
        reason = " (PortAudio is not installed: apt-get install libportaudio2)"
        super().__init__(f"no {what} found{reason if portaudio_missing else ''}")
        self.direction = direction
        self.portaudio_missing = portaudio_missing
