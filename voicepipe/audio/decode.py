"""Decode compressed audio (mp3, opus, aac, flac, G.711) to mono int16 with the ffmpeg program.

Only for formats that cannot be streamed sample by sample: the whole file is decoded at once,
so these formats add the full synthesis time to the latency. Prefer PCM or WAV.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

import anyio
import numpy as np

from voicepipe.audio.chunk import Samples
from voicepipe.audio.resample import mix_to_mono
from voicepipe.audio.wavstream import WavFormatError, WavStreamParser
from voicepipe.errors import AudioError

__all__ = ["DecodeError", "decode_audio", "find_ffmpeg", "read_audio"]


class DecodeError(AudioError):
    """ffmpeg could not decode the bytes: they are not audio in the expected format."""


def find_ffmpeg(purpose: str) -> str:
    """Return the path of the ffmpeg program, or raise AudioError saying how to get it."""
    path = shutil.which("ffmpeg")
    if path is None:
        raise AudioError(
            f"{purpose} needs the ffmpeg program, which is not on PATH: install it "
            "(apt-get install ffmpeg, brew install ffmpeg) or choose a PCM/WAV format"
        )
    return path


async def decode_audio(
    data: bytes, *, ffmpeg: str, input_args: Sequence[str] = ()
) -> tuple[Samples, int]:
    """Decode a complete audio file to mono int16 samples at its own rate: ``(samples, rate)``.

    ``input_args`` describe headerless input (e.g. ``["-f", "mulaw", "-ar", "8000"]``).
    """
    command = [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        *input_args,
        "-i",
        "pipe:0",
        "-f",
        "wav",
        "-acodec",
        "pcm_s16le",
        "-ac",
        "1",
        "pipe:1",
    ]
    result = await anyio.run_process(command, input=data, check=False)
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise DecodeError(
            f"ffmpeg could not decode the audio ({len(data)} bytes): "
            f"{detail[-1] if detail else f'exit status {result.returncode}'}"
        )
    parser = WavStreamParser()
    try:
        pcm = parser.feed(result.stdout)
        parser.finish()
    except WavFormatError as exc:
        raise DecodeError(f"ffmpeg produced unreadable output: {exc}") from exc
    wav = parser.format
    assert wav is not None
    frames = np.frombuffer(pcm, dtype="<i2").astype(np.int16).reshape(-1, wav.channels)
    return mix_to_mono(frames), wav.sample_rate


async def read_audio(data: bytes) -> tuple[Samples, int]:
    """Any audio file's bytes as mono int16 at its own rate: WAV directly, else via ffmpeg.

    :raises DecodeError: the bytes are not audio in a format ffmpeg knows.
    :raises AudioError: they are not WAV and ffmpeg is not installed.
    """
    parser = WavStreamParser()
    try:
        pcm = parser.feed(data)
        parser.finish()
        wav = parser.format
        if wav is not None:  # the parser accepts 16-bit PCM only
            frames = np.frombuffer(pcm, dtype="<i2").astype(np.int16).reshape(-1, wav.channels)
            return mix_to_mono(frames), wav.sample_rate
    except WavFormatError:
        pass  # not a 16-bit PCM WAV: let ffmpeg try
    return await decode_audio(data, ffmpeg=find_ffmpeg("reading this audio format"))
