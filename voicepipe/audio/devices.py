"""PortAudio's devices: listing them and turning a ``--device`` option into an index."""

from __future__ import annotations

from typing import Any, Literal

from voicepipe.errors import AudioError, NoDevice

Direction = Literal["input", "output"]


def portaudio(direction: Direction) -> Any:
    """The sounddevice module.

    :raises NoDevice: PortAudio (libportaudio2) is not installed.
    """
    try:
        import sounddevice
    except OSError as exc:  # libportaudio2 is not installed
        raise NoDevice(direction, portaudio_missing=True) from exc
    return sounddevice


def list_devices(direction: Direction) -> list[dict[str, Any]]:
    """Devices that can ``direction`` audio: index, name, channels, default rate, default."""
    sd = portaudio(direction)
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


def resolve(device: str | int | None, direction: Direction) -> int | None:
    """The PortAudio index ``device`` (an index, or part of a name) names; None: the default.

    :raises NoDevice: there is no ``direction`` device at all.
    :raises AudioError: ``device`` names none, or several, of them.
    """
    devices = list_devices(direction)
    if not devices:
        raise NoDevice(direction)
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
