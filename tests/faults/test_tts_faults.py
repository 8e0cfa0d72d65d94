"""TTS faults through the real CLI (and in-process where the CLI cannot reach the fault).

The LLM is ``--llm text`` (the prompt itself, paced like tokens) so each cell isolates the
TTS; the harness (conftest) checks one stderr line, no traceback, no key, no broken file.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from tests.faults.conftest import Cli, check_wav_file, closed_port
from tests.faults.leaks import no_leaks
from tests.servers import serve
from tests.servers.tts import Behaviour, Recorded, TTSServer, speech_samples, streaming_wav
from voicepipe import Pipeline, WavFileSink
from voicepipe.errors import ProviderError
from voicepipe.llm.text import TextSource
from voicepipe.tts.openai import OpenAITTS
from voicepipe.tts.piper import PiperTTS

PROMPT = "First sentence is here. Second one follows it. The third ends the answer."


@dataclass(frozen=True)
class Cell:
    behaviour: Behaviour = field(default_factory=Behaviour)
    args: tuple[str, ...] = ()
    url: str | None = None
    returncode: int = 1
    says: tuple[str, ...] = ()
    kept: str = "none"  # none | part | all


CELLS: dict[str, Cell] = {
    "connection-refused": Cell(
        url=f"http://127.0.0.1:{closed_port()}/v1",
        says=("could not reach openai at http://127.0.0.1:", "/v1/audio/speech", "3 attempts"),
    ),
    "dns-failure": Cell(
        url="http://voicepipe-fault.invalid/v1",
        says=("could not reach openai at http://voicepipe-fault.invalid/v1/audio/speech",),
    ),
    "http-401": Cell(
        Behaviour(error_status=401, error_message="Invalid API key."),
        says=("openai returned HTTP 401: Invalid API key.", "check the API key"),
    ),
    "http-429-retry-after-then-success": Cell(
        Behaviour(failures=2, retry_after="0.05"), returncode=0, kept="all"
    ),
    "http-429-no-retry-after-then-success": Cell(
        Behaviour(failures=1, retry_after=None), returncode=0, kept="all"
    ),
    "http-429-exhausted": Cell(
        Behaviour(failures=99, retry_after="0", error_message="Too many requests, slow down."),
        says=("HTTP 429 after 3 attempts: Too many requests, slow down.",),
    ),
    "http-500": Cell(
        Behaviour(error_status=500, error_message="Kokoro exploded."),
        says=("HTTP 500 after 3 attempts: Kokoro exploded.",),
    ),
    "no-first-byte-past-timeout": Cell(
        Behaviour(first_byte_delay=2),  # the server is not told the client left
        args=("--timeout-first-token", "0.3"),
        says=("openai sent no response within 0.3 s",),
    ),
    "stall-mid-audio": Cell(
        Behaviour(hold_after=8000, chunk_size=2000),
        args=("--timeout-idle", "0.3"),
        says=("openai stalled: no data for 0.3 s",),
        kept="part",
    ),
    "connection-dropped-mid-audio": Cell(
        Behaviour(drop_after=8000, chunk_size=2000),
        says=("the connection to openai dropped mid-stream",),
        kept="part",
    ),
    "truncated-audio-half-a-sample": Cell(
        Behaviour(drop_after=8001, chunk_size=2000),
        says=("the connection to openai dropped mid-stream",),
        kept="part",
    ),
    "json-body-instead-of-audio": Cell(
        Behaviour(content_type="application/json"),
        says=("openai answered with application/json instead of audio",),
    ),
    "sample-rate-from-content-type": Cell(
        Behaviour(openai_rate=22050, content_type="audio/pcm;rate=22050"),
        returncode=0,
        kept="all",
    ),
}


@pytest.mark.parametrize("name", list(CELLS))
def test_tts_fault(cli: Cli, fake_tts: TTSServer, name: str) -> None:
    cell = CELLS[name]
    fake_tts.behaviour = cell.behaviour
    url = cell.url or f"{cli.tts_url}/v1"
    outcome = cli.synth(*cell.args, "--tts-url", url, llm="text", prompt=PROMPT)
    assert outcome.returncode == cell.returncode, outcome.stderr
    for text in cell.says:
        assert text in outcome.line, outcome.line
    if cell.kept == "none":
        assert outcome.files == [], outcome.files
        return
    rate, samples = outcome.wav()
    full = len(speech_samples(PROMPT.replace("  ", " "), rate)) / rate
    seconds = len(samples) / rate
    if cell.kept == "all":
        assert rate == cell.behaviour.openai_rate
        assert seconds == pytest.approx(full, abs=0.05)
        return
    # The audio that arrived before the fault is kept, to the whole sample; nothing after it.
    assert len(samples) == (cell.behaviour.drop_after or cell.behaviour.hold_after or 0) // 2
    assert seconds < full


def test_corrupt_piper_voice_is_one_line(cli: Cli, tmp_path: Path) -> None:
    voice = tmp_path / "broken.onnx"
    voice.write_bytes(b"this is not an onnx model" * 10)
    (tmp_path / "broken.onnx.json").write_text('{"audio": {"sample_rate": 22050}}')
    outcome = cli.synth(llm="text", tts=f"piper:{voice}", prompt=PROMPT)
    assert outcome.returncode == 1
    assert f"cannot load Piper voice {voice}" in outcome.line
    assert outcome.files == []


# --- in-process: faults the CLI cannot select -------------------------------------------


class LyingWavServer(TTSServer):
    """Answers ``response_format: wav`` with a header whose sizes are wrong, not placeholders."""

    def __init__(self, riff_size: int, data_size: int) -> None:
        super().__init__()
        self.riff_size = riff_size
        self.data_size = data_size

    async def _audio(self, record: Recorded) -> tuple[bytes | None, str]:
        text = str((record.json or {}).get("input", ""))
        wav = bytearray(streaming_wav(speech_samples(text, 24000).tobytes(), 24000))
        wav[4:8] = struct.pack("<I", self.riff_size)
        data_at = wav.index(b"data")
        wav[data_at + 4 : data_at + 8] = struct.pack("<I", self.data_size)
        return bytes(wav), "audio/wav"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("riff_size", "data_size"),
    [(100, 10), (0, 0), (0x10000000, 0x10000000), (36, 4)],
    ids=["too-small", "zero", "too-large", "tiny"],
)
async def test_wav_header_lying_about_sizes_still_gives_all_audio(
    tmp_path: Path, riff_size: int, data_size: int
) -> None:
    out = tmp_path / "lying.wav"
    with no_leaks(), serve(LyingWavServer(riff_size, data_size)) as url:
        tts = OpenAITTS("tts-1", base_url=f"{url}/v1", response_format="wav")
        with anyio.fail_after(20):
            async with Pipeline(TextSource(0), tts) as pipe:
                run = await pipe.speak(PROMPT, WavFileSink(out))
    expected = sum(len(speech_samples(chunk, 24000)) for chunk in run.chunks)
    assert run.error is None
    check_wav_file(out)
    with anyio.fail_after(5):
        data = await anyio.Path(out).read_bytes()
    assert int.from_bytes(data[40:44], "little") == expected * 2


class CrashingVoice:
    """Stands in for a loaded PiperVoice whose second sentence crashes inside onnxruntime."""

    class Piece:
        sample_rate = 22050
        audio_int16_array = np.full(2205, 100, dtype=np.int16)

    def synthesize(self, text: str, config: Any) -> Iterator[Any]:
        yield self.Piece()
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code")


@pytest.mark.anyio
async def test_piper_crashing_in_its_worker_thread_keeps_the_audio_so_far(tmp_path: Path) -> None:
    out = tmp_path / "piper.wav"
    piper = PiperTTS(tmp_path / "voice.onnx")
    piper._voice = CrashingVoice()  # loaded: synthesis runs the real worker-thread path
    with no_leaks():
        with anyio.fail_after(20):
            async with Pipeline(TextSource(0), piper, chunking="sentence") as pipe:
                with pytest.raises(ProviderError, match="Piper failed on 'First sentence is") as e:
                    await pipe.speak(PROMPT, WavFileSink(out))
    assert "RUNTIME_EXCEPTION" in str(e.value)
    check_wav_file(out)
    with anyio.fail_after(5):
        data = await anyio.Path(out).read_bytes()
    assert int.from_bytes(data[40:44], "little") == 2205 * 2  # the first piece, only
