"""The embedded Piper engine, loaded for real (about a second)."""

from __future__ import annotations

from contextlib import aclosing

import anyio
import numpy as np
import pytest

from voicepipe.tts.piper import PiperTTS

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.mark.parametrize("threads", [1, 2])
async def test_synthesizes_each_sentence_with_the_threads_asked_for(threads: int) -> None:
    tts = PiperTTS(threads=threads)
    assert tts.sample_rate == 22050  # read from the voice's config before loading
    with anyio.fail_after(60):
        async with aclosing(tts.synthesize("Hello there. How are you?", 3)) as audio:
            chunks = [chunk async for chunk in audio]
    assert len(chunks) == 2  # Piper yields one chunk per sentence it finds
    assert all(c.text_index == 3 and c.sample_rate == 22050 for c in chunks)
    assert all(np.abs(c.samples).max() > 1000 for c in chunks)
    assert tts._voice.session.get_session_options().intra_op_num_threads == threads


async def test_empty_text_yields_nothing() -> None:
    tts = PiperTTS()
    with anyio.fail_after(60):
        async with aclosing(tts.synthesize("  ")) as audio:
            assert [chunk async for chunk in audio] == []


async def test_loading_measures_the_voices_speaking_rate_at_its_speed() -> None:
    rates = []
    for length_scale in (None, 0.5):
        tts = PiperTTS(length_scale=length_scale)
        assert tts.chars_per_second is None  # not known before the voice loads
        with anyio.fail_after(60):
            await tts.prepare()
        assert tts.chars_per_second is not None
        rates.append(tts.chars_per_second)
    assert 8 < rates[0] < 25  # joe reads about 15 characters a second
    assert 1.4 < rates[1] / rates[0] < 2.4  # half the length scale: much faster (pauses stay)
