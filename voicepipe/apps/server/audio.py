"""Audio for HTTP clients: raw PCM at the rate asked, a streaming WAV header, MP3 through ffmpeg.

A response is one signal, so it is resampled as one: a ``Resampler`` per response keeps the
filter's state across chunks. Resampling each chunk alone (as before) dropped samples at every
join and clicked there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from voicepipe.apps.server.protocol import Emit
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.resample import Resampler
from voicepipe.audio.wav import wav_header

OPENAI_PCM_RATE = 24000  # OpenAI's pcm format is 24 kHz s16le mono; clients assume it


async def pcm_stream(
    audio: MemoryObjectReceiveStream[AudioChunk], rate: int
) -> AsyncIterator[bytes]:
    """s16le bytes at ``rate`` for the chunks the sink receives, resampled as one stream.

    The filter delays its output by a few milliseconds; the rest comes out at the end. Should
    the engine's rate change mid-answer, the old stream is flushed and a new one begins.
    """
    resampler: Resampler | None = None
    async with audio:
        async for chunk in audio:
            if resampler is None or resampler.from_rate != chunk.sample_rate:
                if resampler is not None:
                    yield resampler.flush().astype("<i2").tobytes()
                resampler = Resampler(chunk.sample_rate, rate)
            samples = resampler.process(chunk.samples)
            if len(samples):
                yield samples.astype("<i2").tobytes()
    if resampler is not None:
        tail = resampler.flush()
        if len(tail):
            yield tail.astype("<i2").tobytes()


def streaming_wav_header(rate: int) -> bytes:
    """A WAV header whose sizes are unknown (0xFFFFFFFF), as OpenAI streams it."""
    header = bytearray(wav_header(rate, 0))
    header[4:8] = b"\xff\xff\xff\xff"
    header[40:44] = b"\xff\xff\xff\xff"
    return bytes(header)


async def encode_mp3(ffmpeg: str, pcm: AsyncIterator[bytes], rate: int, emit: Emit) -> None:
    """Pipe PCM through ffmpeg and stream its MP3 output as it comes."""
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar", str(rate)]
    command += ["-ac", "1", "-i", "pipe:0", "-f", "mp3", "-b:a", "64k", "pipe:1"]
    async with await anyio.open_process(command) as process:
        assert process.stdin is not None and process.stdout is not None
        stdin, stdout = process.stdin, process.stdout

        async def feed() -> None:
            async with stdin:
                async for data in pcm:
                    await stdin.send(data)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(feed)
                async for data in stdout:
                    await emit(data)
        finally:
            if process.returncode is None:
                process.kill()
