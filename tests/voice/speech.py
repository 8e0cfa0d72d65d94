"""Real speech for voice-input tests: Piper's voice saying a sentence, at 16 kHz."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt

from voicepipe.audio.resample import convert_rate
from voicepipe.tts.piper import default_voice_path
from voicepipe.voice.base import LISTEN_RATE


@functools.cache
def _voice() -> Any:
    from piper import PiperVoice

    return PiperVoice.load(default_voice_path())


@functools.cache
def _fixed() -> Any:
    """Piper with its sampling noise off, so a test hears the same samples on every run."""
    from piper import SynthesisConfig

    return SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)


@functools.cache
def piper_says(text: str) -> npt.NDArray[np.int16]:
    """``text`` in the joe voice, mono int16 at 16 kHz: synthesized once per text, and the
    same on every run (Piper's noise is random otherwise: a level test near its margin would
    pass on one run and fail on the next)."""
    pieces = list(_voice().synthesize(text, syn_config=_fixed()))
    audio = np.concatenate([np.asarray(p.audio_int16_array, np.int16).reshape(-1) for p in pieces])
    return convert_rate(audio, int(pieces[0].sample_rate), LISTEN_RATE)


def silence(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(round(LISTEN_RATE * seconds), np.int16)


def noise(seconds: float, level: float = 300.0, seed: int = 1) -> npt.NDArray[np.int16]:
    """Steady white noise (level 300: about -41 dBFS)."""
    rng = np.random.default_rng(seed)
    return rng.normal(0, level, round(LISTEN_RATE * seconds)).astype(np.int16)
