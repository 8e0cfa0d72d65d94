"""The embedded LLM's defaults for a spoken assistant, and what they answer."""

from __future__ import annotations

import anyio
import pytest

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
