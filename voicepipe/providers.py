"""One table from provider specs (``openai:gpt-4o-mini``, ``piper``) to token sources and engines.

A spec is ``NAME`` or ``NAME:ARGUMENT``; each provider documents its argument. Imports are
lazy so the core stays importable without the optional embedded-default packages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voicepipe.errors import ConfigError
from voicepipe.llm.base import TokenSource
from voicepipe.tts.base import TTSEngine
from voicepipe.voice.base import Transcriber

if TYPE_CHECKING:
    from voicepipe.transport.settings import Timeouts


@dataclass(frozen=True)
class ProviderInfo:
    """How a spec is written and what it builds (shown by --help and in errors)."""

    usage: str
    summary: str


LLM_PROVIDERS: dict[str, ProviderInfo] = {
    "local": ProviderInfo(
        "local[:PATH.gguf]", "embedded llama.cpp server (default: SmolLM2-135M), offline"
    ),
    "openai": ProviderInfo(
        "openai:MODEL", "OpenAI Chat Completions, or any compatible server with --llm-url"
    ),
    "anthropic": ProviderInfo("anthropic:MODEL", "Anthropic Messages (ANTHROPIC_API_KEY)"),
    "ollama": ProviderInfo("ollama:MODEL", "Ollama's native /api/chat (OLLAMA_HOST honoured)"),
    "text": ProviderInfo("text", "speaks the prompt itself, paced like tokens (no model)"),
}

TTS_PROVIDERS: dict[str, ProviderInfo] = {
    "piper": ProviderInfo("piper[:VOICE.onnx]", "embedded Piper neural TTS (default: en_US joe)"),
    "openai": ProviderInfo(
        "openai:MODEL[:VOICE]", "OpenAI /v1/audio/speech, or Kokoro-FastAPI etc. with --tts-url"
    ),
    "elevenlabs": ProviderInfo("elevenlabs:VOICE_ID", "ElevenLabs streaming (ELEVENLABS_API_KEY)"),
    "espeak": ProviderInfo("espeak[:VOICE]", "espeak-ng binary: tiny, fast, robotic"),
}


STT_PROVIDERS: dict[str, ProviderInfo] = {
    "local": ProviderInfo("local", "embedded Whisper tiny.en (faster-whisper), offline"),
    "openai": ProviderInfo(
        "openai[:MODEL]",
        "OpenAI /v1/audio/transcriptions (default whisper-1), or a compatible server with a URL",
    ),
}


def parse_spec(spec: str, table: dict[str, ProviderInfo], kind: str) -> tuple[str, str]:
    """Split ``NAME:ARG`` and check NAME is known, listing the known ones if not."""
    name, _, arg = spec.strip().partition(":")
    name = name.lower()
    if name not in table:
        known = ", ".join(info.usage for info in table.values())
        raise ConfigError(f"unknown {kind} provider {spec!r}: use one of {known}")
    return name, arg


def check_url(url: str, option: str) -> str:
    """Fail early, naming the option, when a base URL is not an absolute http(s) URL."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
        raise ConfigError(
            f"{option} {url!r} is not an http:// or https:// URL (e.g. http://localhost:8080/v1)"
        )
    return url.strip()


def _need(arg: str, name: str, table: dict[str, ProviderInfo], kind: str) -> str:
    if not arg:
        raise ConfigError(f"{kind} provider {name!r} needs an argument: {table[name].usage}")
    return arg


def make_llm(
    spec: str,
    *,
    url: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    timeouts: Timeouts | None = None,
) -> TokenSource:
    """Build the token source a ``--llm`` spec names (``timeouts``: network providers only)."""
    name, arg = parse_spec(spec, LLM_PROVIDERS, "LLM")
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError(f"--max-tokens must be at least 1 (got {max_tokens})")
    common: dict[str, Any] = {}
    if temperature is not None:
        common["temperature"] = temperature
    if name == "local":
        from voicepipe.llm.local import LocalChat

        return LocalChat(arg or None, max_tokens=max_tokens or 256, seed=seed, **common)
    if name == "text":
        from voicepipe.llm.text import TextSource

        return TextSource()
    model = _need(arg, name, LLM_PROVIDERS, "LLM")
    if max_tokens is not None:
        common["max_tokens"] = max_tokens
    if url:  # Ollama also takes OLLAMA_HOST's forms (localhost:11434): it checks its own
        common["base_url"] = url if name == "ollama" else check_url(url, "--llm-url")
    if timeouts is not None:
        common["timeouts"] = timeouts
    if name == "openai":
        from voicepipe.llm.openai import OpenAIChat

        return OpenAIChat(model, **common)
    if name == "anthropic":
        from voicepipe.llm.anthropic import AnthropicChat

        return AnthropicChat(model, **common)
    from voicepipe.llm.ollama import OllamaChat

    return OllamaChat(model, **common)


def make_tts(spec: str, *, url: str | None = None, timeouts: Timeouts | None = None) -> TTSEngine:
    """Build the TTS engine a ``--tts`` spec names (``timeouts``: network engines only)."""
    name, arg = parse_spec(spec, TTS_PROVIDERS, "TTS")
    if name == "piper":
        from voicepipe.tts.piper import PiperTTS

        return PiperTTS(arg or None)
    if name == "espeak":
        from voicepipe.tts.espeak import EspeakTTS

        return EspeakTTS(arg or "en-us")
    common: dict[str, Any] = {"base_url": check_url(url, "--tts-url")} if url else {}
    if timeouts is not None:
        common["timeouts"] = timeouts
    if name == "openai":
        from voicepipe.tts.openai import OpenAITTS

        model, _, voice = _need(arg, name, TTS_PROVIDERS, "TTS").partition(":")
        if voice:
            common["voice"] = voice
        return OpenAITTS(model, **common)
    from voicepipe.tts.elevenlabs import ElevenLabsTTS

    return ElevenLabsTTS(_need(arg, name, TTS_PROVIDERS, "TTS"), **common)


def make_stt(spec: str = "local", *, url: str | None = None) -> Transcriber:
    """Build the transcriber a ``--stt`` spec names.

    :raises ConfigError: an unknown provider or a bad URL.
    :raises MissingKey: OpenAI's own host without ``OPENAI_API_KEY``.
    """
    name, arg = parse_spec(spec, STT_PROVIDERS, "STT")
    if name == "local":
        from voicepipe.voice.whisper import LocalTranscriber

        return LocalTranscriber(arg or None)
    from voicepipe.transport.keys import OPENAI_BASE_URL
    from voicepipe.voice.stt import OpenAITranscriber

    base = check_url(url, "--stt-url").rstrip("/") if url else OPENAI_BASE_URL
    return OpenAITranscriber(arg or "whisper-1", base_url=base)
