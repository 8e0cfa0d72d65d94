"""One table from provider specs (``openai:gpt-4o-mini``, ``piper``) to token sources and engines.

A spec is ``NAME`` or ``NAME:ARGUMENT``; each provider documents its argument. Specs joined
by commas (``piper,espeak``) are a fallback chain: the next takes over when one fails. Imports
are lazy so the core stays importable without the optional embedded-default packages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
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


def split_chain(spec: str, kind: str) -> list[str]:
    """The specs of a fallback chain ``A,B,...`` (one spec: a list of one)."""
    specs = [part.strip() for part in spec.split(",")]
    if len(specs) > 1 and not all(specs):
        raise ConfigError(f"empty {kind} spec in the fallback chain {spec!r}: write A,B")
    return specs


# Network providers: in a chain, the URL and key options (and the TTS wire format and
# instructions) go to the first of these, the others keep their own defaults.
_NETWORK = {"LLM": ("openai", "anthropic", "ollama"), "TTS": ("openai", "elevenlabs")}


def _first_network(specs: list[str], kind: str, given: Mapping[str, object]) -> int | None:
    """The member of a chain that gets the URL/key options ``given`` (None: none given)."""
    names = [spec.partition(":")[0].strip().lower() for spec in specs]
    first = next((i for i, name in enumerate(names) if name in _NETWORK[kind]), None)
    options = [option for option, value in given.items() if value is not None]
    if options and first is None:
        raise ConfigError(
            f"{', '.join(options)} given for the {kind} chain {','.join(specs)!r}, which has "
            f"no network provider to take it ({', '.join(_NETWORK[kind])})"
        )
    return first


def _check_temperature(temperature: float | None) -> None:
    if temperature is not None and not 0 <= temperature <= 2:  # also false for NaN
        raise ConfigError(f"--temperature must be between 0 and 2 (got {temperature})")


def _openai_base(url: str | None, api_key: str | None, option: str) -> tuple[str, str | None]:
    """An OpenAI-style endpoint: ``url``, else $OPENAI_BASE_URL (with $OPENAI_API_KEY), else
    OpenAI's own, each checked and named in the error."""
    from voicepipe.transport.keys import OPENAI_BASE_ENV, openai_endpoint

    base, key = openai_endpoint(url, api_key)
    return check_url(base, option if url else OPENAI_BASE_ENV).rstrip("/"), key


def make_llm(
    spec: str,
    *,
    url: str | None = None,
    api_key: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    timeouts: Timeouts | None = None,
    on_fallback: Callable[[str], None] | None = None,
) -> TokenSource:
    """Build the token source a ``--llm`` spec names (``timeouts``: network providers only).

    ``api_key`` goes to ``url`` (or the provider's own host); without it a vendor's key from
    the environment goes only to that vendor's host. ``temperature`` (0-2) reaches every
    model; the ``text`` source has no sampling and ignores it.

    ``A,B`` is a fallback chain (:class:`~voicepipe.llm.fallback.FallbackLLM`): B answers when
    A fails before its first text. ``url`` and ``api_key`` go to the first network provider
    in it, the other options to all; ``on_fallback`` hears each switch, in a sentence.

    :raises ConfigError: an unknown provider, a bad URL or option.
    :raises MissingKey: the vendor's own host without its key in the environment.
    """
    specs = split_chain(spec, "LLM")
    if len(specs) > 1:
        from voicepipe.llm.fallback import FallbackLLM

        gets_url = _first_network(specs, "LLM", {"--llm-url": url, "an API key": api_key})
        sources = [
            make_llm(
                member,
                url=url if i == gets_url else None,
                api_key=api_key if i == gets_url else None,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed,
                timeouts=timeouts,
            )
            for i, member in enumerate(specs)
        ]
        return FallbackLLM(sources, on_switch=on_fallback)
    name, arg = parse_spec(spec, LLM_PROVIDERS, "LLM")
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError(f"--max-tokens must be at least 1 (got {max_tokens})")
    _check_temperature(temperature)
    if api_key is not None and name in ("local", "text"):
        raise ConfigError(f"the {name} LLM runs in this process and takes no API key")
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
    if api_key is not None:
        common["api_key"] = api_key
    if timeouts is not None:
        common["timeouts"] = timeouts
    if name == "openai":
        from voicepipe.llm.openai import OpenAIChat

        common["base_url"], common["api_key"] = _openai_base(url, api_key, "--llm-url")
        return OpenAIChat(model, **common)
    if url:  # Ollama also takes OLLAMA_HOST's forms (localhost:11434): it checks its own
        common["base_url"] = url if name == "ollama" else check_url(url, "--llm-url")
    if name == "anthropic":
        from voicepipe.llm.anthropic import AnthropicChat

        return AnthropicChat(model, **common)
    from voicepipe.llm.ollama import OllamaChat

    return OllamaChat(model, **common)


_ESPEAK_WPM = 175  # espeak-ng's own rate, words per minute: speed 1.0

# Which engine takes which TTS option (the CLI's --tts-speed, --tts-format, --tts-instructions).
_TTS_OPTIONS = {
    "speed": ("piper", "espeak", "openai", "elevenlabs"),
    "format": ("openai", "elevenlabs"),
    "instructions": ("openai",),
}


def _check_tts_options(name: str, given: dict[str, object]) -> None:
    for option, value in given.items():
        if value is not None and name not in _TTS_OPTIONS[option]:
            takers = ", ".join(_TTS_OPTIONS[option])
            raise ConfigError(
                f"the {name} TTS engine has no {option} option (--tts-{option}); {takers} do"
            )


def make_tts(
    spec: str,
    *,
    url: str | None = None,
    api_key: str | None = None,
    voice: str | None = None,
    speed: float | None = None,
    format: str | None = None,  # the CLI's --tts-format, by the same name
    instructions: str | None = None,
    timeouts: Timeouts | None = None,
    on_fallback: Callable[[str], None] | None = None,
) -> TTSEngine:
    """Build the TTS engine a ``--tts`` spec names, with the CLI's TTS options.

    ``voice`` is the spec's argument given apart (``make_tts("espeak", voice="en-gb")``);
    ``speed`` is a factor on the engine's normal rate (Piper's length scale, espeak's words
    per minute, OpenAI's ``speed``, ElevenLabs' ``voice_settings.speed``); ``format`` is the
    wire format of a network engine (OpenAI ``pcm``/``wav``/``mp3``..., ElevenLabs
    ``pcm_24000``...); ``instructions`` steer an OpenAI voice (gpt-4o-mini-tts). An engine
    that lacks an option is a ConfigError naming the ones that have it, never ignored.
    ``api_key`` and ``timeouts`` are for network engines.

    ``A,B`` is a fallback chain (:class:`~voicepipe.tts.fallback.FallbackTTS`): when A fails,
    B speaks from the chunk that failed. ``url``, ``api_key``, ``format`` and ``instructions``
    go to the first network engine in it, ``speed`` to every engine; ``voice`` belongs in
    each spec. ``on_fallback`` hears each switch, in a sentence.

    :raises ConfigError: an unknown provider, a bad URL or option.
    :raises MissingKey: the vendor's own host without its key in the environment.
    """
    specs = split_chain(spec, "TTS")
    if len(specs) > 1:
        return _tts_chain(
            specs,
            url=url,
            api_key=api_key,
            voice=voice,
            speed=speed,
            format=format,
            instructions=instructions,
            timeouts=timeouts,
            on_fallback=on_fallback,
        )
    name, arg = parse_spec(spec, TTS_PROVIDERS, "TTS")
    _check_tts_options(name, {"speed": speed, "format": format, "instructions": instructions})
    if speed is not None and not 0 < speed < math.inf:
        raise ConfigError(f"--tts-speed must be a positive factor, 1.0 the normal rate ({speed})")
    if voice is not None:
        if not voice.strip():
            raise ConfigError("the voice is empty: name one, or leave it out for the default")
        if name == "openai":
            model, _, spec_voice = arg.partition(":")
            if spec_voice and spec_voice != voice:
                raise ConfigError(f"two voices given: {spec!r} and voice={voice!r}; give one")
            arg = f"{model}:{voice}"
        elif arg and arg != voice:
            raise ConfigError(f"two voices given: {spec!r} and voice={voice!r}; give one")
        else:
            arg = voice
    if api_key is not None and name in ("piper", "espeak"):
        raise ConfigError(f"the {name} TTS engine runs on this machine and takes no API key")
    if name == "piper":
        from voicepipe.tts.piper import PiperTTS

        # Piper's length scale is time per phoneme: twice as fast is half as long.
        return PiperTTS(arg or None, length_scale=None if speed is None else 1.0 / speed)
    if name == "espeak":
        from voicepipe.tts.espeak import EspeakTTS

        wpm = None if speed is None else round(_ESPEAK_WPM * speed)
        return EspeakTTS(arg or "en-us", wpm)
    common: dict[str, Any] = {}
    if api_key is not None:
        common["api_key"] = api_key
    if timeouts is not None:
        common["timeouts"] = timeouts
    if name == "openai":
        from voicepipe.tts.openai import OpenAITTS

        model, _, spec_voice = _need(arg, name, TTS_PROVIDERS, "TTS").partition(":")
        if spec_voice:
            common["voice"] = spec_voice
        common["base_url"], common["api_key"] = _openai_base(url, api_key, "--tts-url")
        if format is not None:
            common["response_format"] = format
        return OpenAITTS(model, speed=speed, instructions=instructions, **common)
    from voicepipe.tts.elevenlabs import ElevenLabsTTS

    if url:
        common["base_url"] = check_url(url, "--tts-url")
    if format is not None:
        common["output_format"] = format
    if speed is not None:
        common["voice_settings"] = {"speed": speed}
    return ElevenLabsTTS(_need(arg, name, TTS_PROVIDERS, "TTS"), **common)


def _tts_chain(
    specs: list[str],
    *,
    url: str | None,
    api_key: str | None,
    voice: str | None,
    speed: float | None,
    format: str | None,
    instructions: str | None,
    timeouts: Timeouts | None,
    on_fallback: Callable[[str], None] | None,
) -> TTSEngine:
    from voicepipe.tts.fallback import FallbackTTS

    if voice is not None:
        raise ConfigError(
            f"voice={voice!r} with the TTS chain {','.join(specs)!r}: put each engine's voice "
            "in its spec (openai:tts-1:nova,espeak:en-gb)"
        )
    network = {"--tts-url": url, "an API key": api_key}
    network.update({"--tts-format": format, "--tts-instructions": instructions})
    gets_network = _first_network(specs, "TTS", network)
    engines = []
    for i, member in enumerate(specs):
        mine = i == gets_network  # it also checks that it takes --tts-format/-instructions
        takes_speed = member.partition(":")[0].strip().lower() in _TTS_OPTIONS["speed"]
        engines.append(
            make_tts(
                member,
                url=url if mine else None,
                api_key=api_key if mine else None,
                speed=speed if takes_speed else None,
                format=format if mine else None,
                instructions=instructions if mine else None,
                timeouts=timeouts,
            )
        )
    return FallbackTTS(engines, on_switch=on_fallback)


def make_stt(
    spec: str = "local", *, url: str | None = None, api_key: str | None = None
) -> Transcriber:
    """Build the transcriber a ``--stt`` spec names.

    ``api_key`` goes to ``url`` (or OpenAI's own host); ``$OPENAI_BASE_URL`` is honoured
    with ``$OPENAI_API_KEY`` as for chat.

    :raises ConfigError: an unknown provider or a bad URL.
    :raises MissingKey: OpenAI's own host without ``OPENAI_API_KEY``.
    """
    name, arg = parse_spec(spec, STT_PROVIDERS, "STT")
    if name == "local":
        if api_key is not None:
            raise ConfigError("the local transcriber runs on this machine and takes no API key")
        from voicepipe.voice.whisper import LocalTranscriber

        return LocalTranscriber(arg or None)
    from voicepipe.voice.stt import OpenAITranscriber

    base, key = _openai_base(url, api_key, "--stt-url")
    return OpenAITranscriber(arg or "whisper-1", base_url=base, api_key=key)
