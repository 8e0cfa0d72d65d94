"""What to do next, in terms of this CLI's flags: the library's errors carry facts, not flags."""

from __future__ import annotations

from voicepipe.errors import MissingKey, MissingModel, NoDevice, ProviderError, VoicepipeError

__all__ = ["hint", "with_hint"]

_MODEL_FLAG = {"llm": "--llm local:PATH.gguf", "tts": "--tts piper:VOICE.onnx"}


def hint(exc: VoicepipeError) -> str | None:
    """The next step for a user of the command line, when there is one."""
    if isinstance(exc, MissingKey):
        return f"export {exc.env_var}=... (keys are read from the environment only)"
    if isinstance(exc, MissingModel):
        install = "scripts/demo installs it"
        flag = _MODEL_FLAG.get(exc.kind)
        return f"{install}, or pass {flag}" if flag else install
    if isinstance(exc, ProviderError) and exc.status in (401, 403):
        return (
            "a key for another server goes in an environment variable whose name you pass: "
            "--llm-key-env VAR (--tts-key-env, --stt-key-env for speech)"
        )
    if isinstance(exc, NoDevice):
        if exc.direction == "output":
            return "write the audio to a file with -o FILE"
        return "chat without --listen and type"
    return None


def with_hint(exc: VoicepipeError) -> str:
    """The error's message, followed by the CLI's hint when there is one."""
    extra = hint(exc)
    return f"{exc}; {extra}" if extra else str(exc)
