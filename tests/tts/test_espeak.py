from __future__ import annotations

import os
import shutil
from contextlib import aclosing
from pathlib import Path

import anyio
import numpy as np
import pytest

from tests.tts.chunks import collect
from voicepipe.audio.chunk import AudioChunk
from voicepipe.errors import ConfigError, ProviderError
from voicepipe.tts.espeak import EspeakTTS

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]


def seconds(chunks: list[AudioChunk]) -> float:
    return sum(c.duration for c in chunks)


async def test_speaks_a_sentence() -> None:
    tts = EspeakTTS()
    chunks = await collect(tts.synthesize("Hello there, how are you today?", text_index=2))
    assert {(c.sample_rate, c.text_index) for c in chunks} == {(22050, 2)}
    assert 1.0 < seconds(chunks) < 5.0
    audio = np.concatenate([c.samples for c in chunks])
    assert np.abs(audio).max() > 1000  # not silence


async def test_faster_rate_is_shorter() -> None:
    text = "This sentence is spoken at two different speeds."
    slow = seconds(await collect(EspeakTTS(rate_wpm=120).synthesize(text)))
    fast = seconds(await collect(EspeakTTS(rate_wpm=350).synthesize(text)))
    assert fast < slow * 0.6


async def test_text_that_looks_like_an_option_is_spoken() -> None:
    assert seconds(await collect(EspeakTTS().synthesize("--version -h"))) > 0.3


async def test_empty_text_yields_nothing() -> None:
    assert await collect(EspeakTTS().synthesize(" \n ")) == []


async def test_closing_early_kills_the_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    wrapper = tmp_path / "espeak-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho $$ > {pid_file}\nexec espeak-ng "$@"\n')
    wrapper.chmod(0o755)
    tts = EspeakTTS(executable=str(wrapper))
    long_text = "This is a long text that takes espeak a while to say. " * 400
    with anyio.fail_after(5):
        async with aclosing(tts.synthesize(long_text)) as chunks:
            await chunks.__anext__()
            pid = int(await anyio.Path(pid_file).read_text())
            assert await anyio.Path(f"/proc/{pid}").exists()  # still synthesizing
    assert not await anyio.Path(f"/proc/{pid}").exists()  # killed and reaped


async def test_unknown_voice_says_what_to_do() -> None:
    with pytest.raises(ProviderError, match="espeak-ng --voices"):
        await collect(EspeakTTS(voice="xx-nonexistent").synthesize("Hello."))


def test_missing_program_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", os.devnull)
    with pytest.raises(ConfigError, match="apt-get install espeak-ng"):
        EspeakTTS()
