"""The embedded LLM's defaults for a spoken assistant, and what they answer."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import anyio
import httpx
import pytest

from voicepipe.errors import ConfigError
from voicepipe.llm.base import Message
from voicepipe.llm.local import ASSISTANT_EXAMPLES, ASSISTANT_SYSTEM, EmbeddedLlamaServer, LocalChat

USER: Message = {"role": "user", "content": "What do bees make?"}


def test_the_bundled_model_gets_the_assistant_defaults() -> None:
    chat = LocalChat()
    assert chat.temperature == 0.0
    assert chat.with_defaults([USER]) == [
        {"role": "system", "content": ASSISTANT_SYSTEM},
        *ASSISTANT_EXAMPLES,
        USER,
    ]


def test_a_system_prompt_of_ones_own_replaces_the_default_and_keeps_the_examples() -> None:
    mine: Message = {"role": "system", "content": "Answer like a pirate."}
    assert LocalChat().with_defaults([mine, USER]) == [mine, *ASSISTANT_EXAMPLES, USER]
    assert LocalChat(examples=False).with_defaults([mine, USER]) == [mine, USER]


def test_a_model_of_ones_own_gets_no_defaults() -> None:
    server = EmbeddedLlamaServer(None)
    chat = LocalChat(server=server, temperature=None)
    assert chat.temperature is None and chat.with_defaults([USER]) == [USER]


@pytest.mark.slow
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # one model load is enough
@pytest.mark.anyio
async def test_the_defaults_answer_simple_questions_in_english() -> None:
    async with LocalChat(max_tokens=60) as chat:
        answers = []
        for question in ("My name is Ada. What is the capital of France?", "What do bees make?"):
            with anyio.fail_after(60):
                answers.append(
                    "".join([d async for d in chat.stream([{"role": "user", "content": question}])])
                )
    assert "Paris" in answers[0] and answers[0].isascii()  # was French nonsense
    assert "honey" in answers[1].lower()  # was forty words without it


@pytest.mark.slow
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # two model loads are enough
@pytest.mark.anyio
async def test_prepare_fills_the_prompt_cache_with_the_system_prompt_and_examples() -> None:
    """The first answer after loading pays only for its question, not the 170-token prefix."""
    evaluated = {}
    for warm in (False, True):
        async with LocalChat(warm=warm) as chat:
            assert chat.server.base_url is not None
            body = {
                "messages": chat.with_defaults([USER]),
                "max_tokens": 1,
                "temperature": 0,
            }
            async with httpx.AsyncClient(timeout=60) as client:
                with anyio.fail_after(60):
                    response = await client.post(
                        f"{chat.server.base_url}/v1/chat/completions", json=body
                    )
            timings = response.json()["timings"]
            evaluated[warm] = (timings["cache_n"], timings["prompt_n"])
    cold_cached, cold_evaluated = evaluated[False]
    warm_cached, warm_evaluated = evaluated[True]
    assert cold_cached == 0 and cold_evaluated > 150
    assert warm_cached > 150 and warm_evaluated < 20


def test_bad_thread_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="poll"):
        EmbeddedLlamaServer(poll=101)
    with pytest.raises(ConfigError, match="priority"):
        EmbeddedLlamaServer(priority=2)


def _nice_by_thread() -> dict[int, int]:
    out = {}
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            out[int(tid)] = int(stat[16])  # the thread's nice value
    return out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
@pytest.mark.parametrize("priority", [0, -1])
async def test_low_priority_lowers_only_llamas_threads(priority: int) -> None:
    """priority=-1 lets Piper win a contended core: only llama.cpp's threads give way."""
    server = EmbeddedLlamaServer(priority=priority)
    assert server.poll == 0  # no spin-waiting between graph steps by default
    async with LocalChat(server=server, max_tokens=8) as chat:
        with anyio.fail_after(60):
            _ = [d async for d in chat.stream([USER])]
        nice = _nice_by_thread()
        worker = await anyio.to_thread.run_sync(threading.get_native_id)  # where Piper runs
    base = nice[os.getpid()]
    assert nice[worker] == base
    if priority == -1:
        assert max(nice.values()) > base  # llama.cpp's compute thread(s), at nice 5
    else:
        assert set(nice.values()) == {base}
