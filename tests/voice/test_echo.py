"""Barge-in with the assistant's own voice in the microphone (real speech).

The figures, per echo level, come from scripts/bench_barge_in.py. With echo cancellation
(the played audio as the reference, as `voicepipe chat` gives it): the assistant's echo
never interrupts it, even as loud as the answer itself, and the user speaking at the
answer's level over it interrupts within 300 ms of their first word. Without (pyaec not
installed, or --no-echo-cancel): the echo still never interrupts, and a user 20 dB above
it does, while still speaking. Most cases run without real-time pacing (the listener reads
the same blocks with the same capture times); one of each kind runs in real time.
"""

from __future__ import annotations

import anyio
import pytest

from tests.voice.echo_loop import (
    USER,
    USER_AT_S,
    interrupted_at,
    interrupted_at_once,
    microphone_signal,
    user_onset_s,
)
from tests.voice.speech import piper_says
from voicepipe.voice.base import LISTEN_RATE

pytestmark = pytest.mark.anyio

TARGET_S = 0.3  # the issue's: interrupted within 300 ms of the user's first word


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the same signal processing on either loop: once is enough


@pytest.mark.parametrize("vad", ["silero", "energy"])
@pytest.mark.parametrize("echo_db", [0, -6, -12])
async def test_with_cancellation_the_echo_alone_never_interrupts(vad: str, echo_db: int) -> None:
    assert await interrupted_at_once(microphone_signal(echo_db, with_user=False), vad) is None


@pytest.mark.parametrize("vad", ["silero", "energy"])
@pytest.mark.parametrize("echo_db", [0, -6, -12])
async def test_with_cancellation_a_user_over_the_echo_interrupts_within_300_ms(
    vad: str, echo_db: int
) -> None:
    heard = await interrupted_at_once(microphone_signal(echo_db, with_user=True), vad)
    assert heard is not None
    assert user_onset_s() < heard < user_onset_s() + TARGET_S


async def test_without_cancellation_a_user_level_with_the_echo_is_missed() -> None:
    """What the canceller buys: the same case, gated on the echo's level only."""
    signal = microphone_signal(0, with_user=True)
    assert await interrupted_at_once(signal, "energy", cancel_echo=False) is None


@pytest.mark.slow
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the unpaced twins run on both
async def test_in_real_time_the_echo_alone_never_interrupts_with_cancellation() -> None:
    with anyio.fail_after(30):
        signal = microphone_signal(0, with_user=False)
        assert await interrupted_at(signal, "silero", cancel_echo=True) is None


@pytest.mark.slow
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the unpaced twins run on both
async def test_in_real_time_a_user_over_a_loud_echo_interrupts_with_cancellation() -> None:
    with anyio.fail_after(30):
        heard = await interrupted_at(
            microphone_signal(0, with_user=True), "silero", cancel_echo=True
        )
    assert heard is not None
    assert user_onset_s() < heard < user_onset_s() + TARGET_S


@pytest.mark.parametrize("vad", ["silero", "energy"])
async def test_without_cancellation_the_echo_alone_never_interrupts(vad: str) -> None:
    signal = microphone_signal(0, with_user=False)
    assert await interrupted_at_once(signal, vad, cancel_echo=False) is None


@pytest.mark.slow
async def test_without_cancellation_a_user_20_db_above_the_echo_interrupts() -> None:
    with anyio.fail_after(30):
        heard = await interrupted_at(microphone_signal(-20, with_user=True), "energy")
    assert heard is not None
    said_for = len(piper_says(USER)) / LISTEN_RATE
    assert USER_AT_S < heard < USER_AT_S + said_for
