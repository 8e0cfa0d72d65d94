"""Barge-in with the assistant's own voice in the microphone (real speech, real time).

The figures, per echo level, come from scripts/bench_barge_in.py; these tests hold the two
properties that are met today: the assistant's echo never interrupts it, even as loud as the
answer itself, and a user 20 dB above the echo does interrupt, while still speaking.
"""

from __future__ import annotations

import anyio
import pytest

from tests.voice.echo_loop import USER, USER_AT_S, interrupted_at, microphone_signal
from tests.voice.speech import piper_says
from voicepipe.voice.vad import LISTEN_RATE

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # real-time audio for seconds: once is enough


@pytest.mark.parametrize("vad", ["silero", "energy"])
async def test_the_assistants_own_voice_never_interrupts_it(vad: str) -> None:
    with anyio.fail_after(30):
        assert await interrupted_at(microphone_signal(0, with_user=False), vad) is None


async def test_a_user_20_db_above_the_echo_interrupts_while_still_speaking() -> None:
    with anyio.fail_after(30):
        heard = await interrupted_at(microphone_signal(-20, with_user=True), "energy")
    assert heard is not None
    said_for = len(piper_says(USER)) / LISTEN_RATE
    assert USER_AT_S < heard < USER_AT_S + said_for
