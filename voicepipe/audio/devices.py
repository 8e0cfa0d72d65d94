"""PortAudio's devices: listing them and turning a ``--device`` option into an index."""

from __future__ import annotations

from typing import Any, Literal

from voicepipe.errors import AudioError

Direction = Literal["input", "output"]


def portaudio(missing: str) -> Any:
    """The sounddevice module; ``missing`` is the AudioError's message without PortAudio."""
    try:
        import sounddevice
    except OSError as exc:  # libportaudio2 is not installed
        raise AudioError(missing) from exc
    return sounddevice


def list_devices(direction: Direction, missing: str) -> list[dict[str, Any]]:
    """Devices that can ``direction`` audio: index, name, channels, default rate, default."""
    sd = portaudio(missing)
    try:
        default = sd.default.device[0 if direction == "input" else 1]
        devices = sd.query_devices()
    except Exception as exc:
        raise AudioError(f"cannot list audio devices: {exc}") from exc
    key = f"max_{direction}_channels"
    return [
        {
            "index": i,
            "name": d["name"],
            "channels": d[key],
            "default_samplerate": d["default_samplerate"],
            "default": i == default,
        }
        for i, d in enumerate(devices)
        if d[key] > 0
    ]


def resolve(
    device: str | int | None, devices: list[dict[str, Any]], direction: Direction, none: str
) -> int | None:
    """The index ``device`` (an index, or part of a name) names among ``devices``.

    ``none`` is the error when there are no such devices at all; None picks the default.
    """
    if not devices:
        raise AudioError(none)
    if device is None:
        return None
    if isinstance(device, int) or device.isdigit():
        index = int(device)
        if any(d["index"] == index for d in devices):
            return index
        raise AudioError(f"no {direction} device with index {index}; see `voicepipe devices`")
    matches = [d for d in devices if device.lower() in str(d["name"]).lower()]
    if len(matches) == 1:
        return int(matches[0]["index"])
    if not matches:
        raise AudioError(f"no {direction} device matches {device!r}; see `voicepipe devices`")
    names = ", ".join(repr(d["name"]) for d in matches)
    raise AudioError(f"{device!r} matches several {direction} devices ({names}); be more specific")
