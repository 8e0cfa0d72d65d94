"""The easy paths of the library: speak text you have, take the audio as chunks, block."""

from __future__ import annotations

import shutil
import subprocess
import sys
import wave
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path

import anyio
import numpy as np
import pytest

from tests import ROOT_DIR, run_script
from tests.audio.conftest import alsa_capture_env
from tests.engines import ToneTTS, tone_for
from voicepipe import timeline as tl
from voicepipe.audio.sinks.files import WavFileSink
from voicepipe.errors import ConfigError, StreamInterrupted
from voicepipe.llm.text import TextSource
from voicepipe.pipeline import Pipeline

TEXT = "Good morning. The weather is sunny today, with a light breeze. That is all."
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="needs espeak-ng (scripts/test installs it)"
)


def wav_samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")


class NoLLM(TextSource):
    """A token source that must not be asked: say() skips the LLM."""

    name = "never"

    async def stream(self, messages):  # type: ignore[no-untyped-def, override]
        raise AssertionError("say() asked the LLM")
        yield ""  # an async generator, like every token source


@pytest.mark.anyio
async def test_say_speaks_a_string_without_the_llm(tmp_path: Path) -> None:
    tts = ToneTTS()
    out = tmp_path / "said.wav"
    with anyio.fail_after(10):
        run = await Pipeline(NoLLM(), tts, chunking="sentence").say(TEXT, WavFileSink(out))
    assert run.chunks == [
        "Good morning.",
        "The weather is sunny today, with a light breeze.",
        "That is all.",
    ]
    assert tts.requests == run.chunks
    expected = np.concatenate([tone_for(c, 16000, tts.seconds_per_word) for c in run.chunks])
    np.testing.assert_array_equal(wav_samples(out), expected)
    start = run.timeline.first(tl.LLM_REQUEST)
    assert start is not None and start.data["provider"] == "text"
    assert run.metrics.ttfa_ms is not None


@pytest.mark.anyio
async def test_say_speaks_pieces_as_they_come_from_a_stream(tmp_path: Path) -> None:
    """Your own model's stream: the first sentence is spoken before the stream ends."""
    words = TEXT.split(" ")
    spoke_first = anyio.Event()

    class Heard(ToneTTS):
        async def synthesize(self, text: str, text_index: int = 0):  # type: ignore[no-untyped-def, override]
            spoke_first.set()
            async with aclosing(super().synthesize(text, text_index)) as audio:
                async for piece in audio:
                    yield piece

    tts = Heard()

    async def my_model() -> AsyncGenerator[str, None]:
        for i, word in enumerate(words):
            yield ("" if i == 0 else " ") + word
            if i == 2:  # "Good morning. The": the first sentence is complete
                with anyio.fail_after(5):
                    await spoke_first.wait()

    with anyio.fail_after(10):
        run = await Pipeline(NoLLM(), tts, chunking="sentence").say(
            my_model(), WavFileSink(tmp_path / "a.wav")
        )
    assert spoke_first.is_set()
    assert run.answer == TEXT and tts.requests[0] == "Good morning."


@pytest.mark.anyio
async def test_say_takes_a_plain_list_and_normalizes_it_like_an_answer(tmp_path: Path) -> None:
    tts = ToneTTS()
    with anyio.fail_after(10):
        run = await Pipeline(NoLLM(), tts, chunking="sentence").say(
            ["**Hello** there. ", "See [the docs](https://x.org/a)."],
            WavFileSink(tmp_path / "b.wav"),
        )
    assert run.chunks == ["Hello there.", "See the docs."]


@pytest.mark.anyio
async def test_say_rejects_empty_text_and_pieces_that_are_not_text(tmp_path: Path) -> None:
    pipe = Pipeline(NoLLM(), ToneTTS())
    with pytest.raises(ConfigError, match="nothing to say"):
        await pipe.say("  \n", WavFileSink(tmp_path / "never.wav"))
    with pytest.raises(ConfigError, match="nothing to say"):
        await pipe.say("")  # before any device is opened: no sink given
    out = tmp_path / "some.wav"
    with pytest.raises(ConfigError, match="got a piece of type int"):
        await pipe.say(["Fine so far. ", 7], WavFileSink(out))  # type: ignore[list-item]
    assert not (tmp_path / "never.wav").exists()
    assert len(wav_samples(out)) > 0  # what came before the bad piece was still spoken


@pytest.mark.anyio
async def test_audio_yields_the_answers_chunks_in_order() -> None:
    tts = ToneTTS()
    pipe = Pipeline(TextSource(0), tts, chunking="sentence")
    with anyio.fail_after(10):
        chunks = [chunk async for chunk in pipe.audio(TEXT)]
    assert [c.text_index for c in chunks] == [0, 0, 1, 1, 2, 2]  # two pieces per chunk
    samples = np.concatenate([c.samples for c in chunks])
    expected = np.concatenate([tone_for(t, 16000, tts.seconds_per_word) for t in tts.requests])
    np.testing.assert_array_equal(samples, expected)
    with anyio.fail_after(10):
        spoken = [chunk async for chunk in pipe.audio(text=TEXT)]
    np.testing.assert_array_equal(np.concatenate([c.samples for c in spoken]), expected)


@pytest.mark.anyio
async def test_breaking_out_of_audio_cancels_the_run() -> None:
    class Endless(TextSource):
        closed = False

        async def stream(self, messages):  # type: ignore[no-untyped-def, override]
            try:
                i = 0
                while True:
                    yield f"Sentence {i}. "
                    i += 1
                    await anyio.sleep(0.001)
            finally:
                Endless.closed = True

    pipe = Pipeline(Endless(), ToneTTS(), chunking="sentence")
    with anyio.fail_after(10):
        async with aclosing(pipe.audio("go")) as chunks:
            async for chunk in chunks:
                if chunk.text_index == 3:
                    break
    assert Endless.closed  # the LLM stream was closed with the run


@pytest.mark.anyio
async def test_audio_raises_the_failure_after_the_audio_before_it() -> None:
    class Dropping(TextSource):
        async def stream(self, messages):  # type: ignore[no-untyped-def, override]
            yield "First sentence here. Second one. "
            raise StreamInterrupted("connection dropped", provider="dropping")

    got = []
    with anyio.fail_after(10), pytest.raises(StreamInterrupted):
        async for chunk in Pipeline(Dropping(), ToneTTS(), chunking="sentence").audio("q"):
            got.append(chunk.text_index)
    assert got == [0, 0, 1, 1]


@pytest.mark.anyio
async def test_audio_needs_a_prompt_or_text_not_both() -> None:
    pipe = Pipeline(TextSource(0), ToneTTS())
    for kwargs in ({}, {"prompt": "q", "text": "t"}):
        with pytest.raises(ConfigError, match="one of them"):
            async for _ in pipe.audio(**kwargs):  # type: ignore[arg-type]
                pass


PLAY_DEFAULT = """
import json, sys
import voicepipe
from voicepipe.audio.sinks.files import file_sink

text = sys.argv[1]
run = voicepipe.say_sync(text, tts="espeak")                 # no sink: the speakers
voicepipe.say_sync(text, tts="espeak", sink=file_sink(sys.argv[2], smooth_joins=True))
print(json.dumps({"chunks": run.chunks, "audio_seconds": run.audio_seconds}))
"""


@needs_espeak
def test_say_sync_plays_on_the_speakers_without_a_sink(tmp_path: Path) -> None:
    """The blocking helper and the default sink together: what is played is what a file gets."""
    env, capture = alsa_capture_env(tmp_path)
    out = tmp_path / "same.wav"
    report = run_script(PLAY_DEFAULT, TEXT, str(out), env=env)
    assert " ".join(report["chunks"]) == TEXT and report["audio_seconds"] > 2
    played = np.fromfile(capture, dtype="<i2")
    written = wav_samples(out)
    np.testing.assert_array_equal(played[played != 0], written[written != 0])


SPEAK_DEFAULT = """
import anyio
from voicepipe import Pipeline, make_llm, make_tts

async def main():
    async with Pipeline(make_llm("text"), make_tts("espeak")) as pipe:
        run = await pipe.speak("Hello there, this goes to the speakers.")
    print(run.audio_seconds)

anyio.run(main)
"""


@needs_espeak
def test_speak_without_a_sink_plays_the_answer(tmp_path: Path) -> None:
    env, capture = alsa_capture_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", SPEAK_DEFAULT],
        env=env,
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    seconds = float(result.stdout)
    played = np.fromfile(capture, dtype="<i2")
    assert seconds > 1 and np.count_nonzero(played) > 0.5 * seconds * 22050


@needs_espeak
def test_blocking_pipeline_keeps_the_models_and_returns_audio() -> None:
    from voicepipe import BlockingPipeline

    with BlockingPipeline("text", "espeak", chunking="sentence") as pipe:
        chunks = pipe.audio(text="One. Two.")
        again = pipe.audio("One. Two.")  # the text LLM speaks the prompt itself
        run = pipe.say("Three.", WavFileSink("/dev/null"))
    assert {c.text_index for c in chunks} == {0, 1}
    assert np.array_equal(
        np.concatenate([c.samples for c in chunks]), np.concatenate([c.samples for c in again])
    )
    assert run.chunks == ["Three."]
