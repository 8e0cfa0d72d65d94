from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from voicepipe.audio.resample import Resampler, expected_length, mix_to_mono, resample


def sine(frequency: float, rate: int, seconds: float) -> npt.NDArray[np.int16]:
    t = np.arange(round(rate * seconds)) / rate
    return np.round(10000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def peak_frequency(samples: npt.NDArray[np.int16], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


@pytest.mark.parametrize(("from_rate", "to_rate"), [(22050, 48000), (24000, 22050)])
def test_sine_keeps_its_frequency_and_duration(from_rate: int, to_rate: int) -> None:
    out = resample(sine(440, from_rate, 1.0), from_rate, to_rate)
    assert out.dtype == np.int16
    assert abs(len(out) - to_rate) <= 2
    assert peak_frequency(out, to_rate) == pytest.approx(440, abs=2)
    assert np.abs(out).max() == pytest.approx(10000, rel=0.02)


@pytest.mark.parametrize(("from_rate", "to_rate"), [(22050, 48000), (24000, 22050)])
@pytest.mark.parametrize("chunk", [1, 137, 4096])
def test_streaming_equals_whole_array(from_rate: int, to_rate: int, chunk: int) -> None:
    signal = sine(440, from_rate, 0.3)
    resampler = Resampler(from_rate, to_rate)
    parts = [resampler.process(signal[i : i + chunk]) for i in range(0, len(signal), chunk)]
    streamed = np.concatenate([*parts, resampler.flush()])
    whole = resample(signal, from_rate, to_rate)
    np.testing.assert_array_equal(streamed, whole)  # exact, whatever the chunking
    assert len(whole) == expected_length(len(signal), from_rate, to_rate)


@pytest.mark.parametrize("frames", [1, 2, 999, 22051])
def test_length_is_the_duration_at_the_new_rate(frames: int) -> None:
    """soxr alone may end a sample short or long; the stream neither gains nor loses one."""
    signal = sine(440, 22050, frames / 22050)
    for to_rate in (24000, 16000, 48000):
        out = resample(signal, 22050, to_rate)
        assert len(out) == round(frames * to_rate / 22050)


def test_the_same_audio_cut_differently_gives_the_same_samples() -> None:
    """soxr's int16 output depends on the cuts; through float it does not."""
    signal = sine(440, 22050, 0.2)
    outs = []
    for chunk in (100, 441, 3000):
        resampler = Resampler(22050, 24000)
        parts = [resampler.process(signal[i : i + chunk]) for i in range(0, len(signal), chunk)]
        outs.append(np.concatenate([*parts, resampler.flush()]))
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


def test_same_rate_is_a_copy() -> None:
    signal = sine(440, 24000, 0.01)
    out = Resampler(24000, 24000).process(signal)
    assert np.array_equal(out, signal) and out is not signal
    assert np.array_equal(resample(signal, 24000, 24000), signal)


def test_stereo_is_mixed_to_mono() -> None:
    left = sine(440, 24000, 0.5)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    assert np.array_equal(mix_to_mono(stereo), np.round(left / 2).astype(np.int16))
    out = resample(stereo, 24000, 48000)
    assert out.ndim == 1 and abs(len(out) - 24000) <= 2
    assert peak_frequency(out, 48000) == pytest.approx(440, abs=2)


def test_mixing_does_not_overflow() -> None:
    loud = np.array([[32767, 32767], [-32768, -32768]], dtype=np.int16)
    assert list(mix_to_mono(loud)) == [32767, -32768]


def test_bad_rates_are_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        Resampler(0, 48000)
