"""TTS fallback chains against real engines: a loopback speech server that fails mid-answer,
then the espeak-ng program speaking on from the chunk that failed."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path

import anyio
import numpy as np
import numpy.typing as npt
import pytest

from tests.cli.test_cli import read_wav, voicepipe
from tests.engines import ToneTTS
from tests.servers import serve
from tests.servers.tts import Behaviour, TTSServer, speech_samples
from tests.tts.chunks import FAST_RETRY, collect, joined
from tests.tts.conftest import RunningServer
from voicepipe import timeline as tl
from voicepipe.audio.chunk import AudioChunk
from voicepipe.audio.sinks.null import NullSink
from voicepipe.errors import ConfigError, ProviderError
from voicepipe.events import AudioPlayed
from voicepipe.llm.text import TextSource
from voicepipe.pipeline import Pipeline, Run
from voicepipe.providers import make_tts
from voicepipe.tts.espeak import EspeakTTS
from voicepipe.tts.fallback import FallbackTTS
from voicepipe.tts.openai import OpenAITTS

pytestmark = pytest.mark.anyio

FIRST = "Hi there."  # 9 characters: 0.09 s, 4320 bytes of 24 kHz PCM from the server
SECOND = "This second sentence is a good deal longer than the first one was."
THIRD = "And a third."
ANSWER = f"{FIRST} {SECOND} {THIRD}"


def server_engine(server: RunningServer) -> OpenAITTS:
    return OpenAITTS(base_url=f"{server.url}/v1", retry=FAST_RETRY)


async def espeak_alone(text: str) -> npt.NDArray[np.int16]:
    """What espeak-ng says for ``text`` on its own: the fallback must say exactly this."""
    async with EspeakTTS() as tts:
        return joined(await collect(tts.synthesize(text)))


async def speak(tts: FallbackTTS, text: str = ANSWER) -> tuple[Run, dict[int, list[AudioChunk]]]:
    """One answer through the pipeline into a null sink; the audio the sink got, by chunk."""
    heard: dict[int, list[AudioChunk]] = {}
    pipe = Pipeline(TextSource(tokens_per_second=0), tts, chunking="sentence")
    with anyio.fail_after(30):
        async with pipe.run(text, NullSink(realtime=False)) as run:
            async for event in run:
                if isinstance(event, AudioPlayed):
                    heard.setdefault(event.index, []).append(event.chunk)
    return run, heard


async def test_a_stream_dropped_mid_chunk_is_spoken_by_the_next_engine_from_that_chunk(
    tts_server: RunningServer,
) -> None:
    # The server finishes the first sentence, then drops the second one's stream after
    # 10 kB: some of it had arrived, and must not be heard.
    tts_server.app.behaviour = Behaviour(drop_after=10_001, chunk_size=1000)
    switches: list[str] = []
    tts = FallbackTTS([server_engine(tts_server), EspeakTTS()], on_switch=switches.append)
    async with tts:
        run, heard = await speak(tts)

    assert run.error is None
    assert sorted(heard) == [0, 1, 2]
    assert {c.sample_rate for c in heard[0]} == {24000}
    assert np.array_equal(joined(heard[0]), speech_samples(FIRST, 24000))
    # Chunks 1 and 2 are espeak's alone: nothing of the dropped stream, nothing twice.
    for index, text in ((1, SECOND), (2, THIRD)):
        assert {c.sample_rate for c in heard[index]} == {22050}
        assert np.array_equal(joined(heard[index]), await espeak_alone(text))
    # The switch lasts for the answer: the third sentence never went to the server.
    assert [r.json["input"] for r in tts_server.app.requests] == [FIRST, SECOND]
    (switch,) = run.timeline.all(tl.FALLBACK)
    assert switch.data["stage"] == "tts" and switch.data["index"] == 1
    assert (switch.data["failed"], switch.data["next"]) == ("openai", "espeak")
    assert "dropped" in switch.data["message"]
    (message,) = switches
    assert message.startswith("TTS openai failed on chunk 2 (") and "espeak speaks" in message
    # The timeline still reads as one answer: each chunk requested once, done once.
    assert [e.data["index"] for e in run.timeline.all(tl.TTS_DONE)] == [0, 1, 2]


async def test_a_server_error_before_any_audio_falls_back_at_once(
    tts_server: RunningServer,
) -> None:
    tts_server.app.behaviour = Behaviour(error_status=500, error_message="overloaded")
    tts = FallbackTTS([server_engine(tts_server), EspeakTTS()])
    async with tts:
        run, heard = await speak(tts)
    assert run.error is None and sorted(heard) == [0, 1, 2]
    assert np.array_equal(joined(heard[0]), await espeak_alone(FIRST))
    (switch,) = run.timeline.all(tl.FALLBACK)
    assert switch.data["index"] == 0 and "overloaded" in switch.data["message"]
    assert run.metrics.ttfa_ms is not None


async def test_each_answer_tries_the_first_engine_again(tts_server: RunningServer) -> None:
    tts_server.app.behaviour = Behaviour(failures=1, failure_status=400)
    tts = FallbackTTS([server_engine(tts_server), EspeakTTS()])
    async with tts:
        first, heard_first = await speak(tts, FIRST)
        second, heard_second = await speak(tts, FIRST)
    assert {c.sample_rate for c in heard_first[0]} == {22050}
    assert len(list(first.timeline.all(tl.FALLBACK))) == 1
    assert np.array_equal(joined(heard_second[0]), speech_samples(FIRST, 24000))
    assert list(second.timeline.all(tl.FALLBACK)) == []


async def test_when_the_last_engine_fails_the_run_fails_and_keeps_what_was_said(
    tts_server: RunningServer,
) -> None:
    """Both engines are the failing server: the second's error is the run's."""
    tts_server.app.behaviour = Behaviour(drop_after=10_001, chunk_size=1000)
    tts = FallbackTTS([server_engine(tts_server), server_engine(tts_server)])
    async with tts:
        with pytest.raises(ProviderError, match="dropped"):
            await speak(tts)
    requests = [r.json["input"] for r in tts_server.app.requests]
    assert requests == [FIRST, SECOND, SECOND]  # the last engine is not asked for more


async def test_the_last_engine_streams_as_it_speaks(tts_server: RunningServer) -> None:
    """Only engines with a fallback after them hold a chunk back; the last one streams."""
    tts_server.app.behaviour = Behaviour(hold_after=4800, chunk_size=1200)
    tts = FallbackTTS([ToneTTS(fail_at_index=0), server_engine(tts_server)])
    async with tts, aclosing(tts.synthesize(SECOND, 0)) as audio:
        with anyio.fail_after(10):
            first = await audio.__anext__()  # while the server still holds the rest
        assert not tts_server.app.requests[0].completed
        tts_server.app.release.set()
        rest = await collect(audio)
    assert np.array_equal(joined([first, *rest]), speech_samples(SECOND, 24000))


class FailsOn(ToneTTS):
    """A tone engine that fails on one text, wherever it comes in an answer."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    async def synthesize(self, text: str, text_index: int = 0) -> AsyncGenerator[AudioChunk, None]:
        if text == self.text:
            raise ProviderError("no voice for that", provider="tone")
        async with aclosing(super().synthesize(text, text_index)) as audio:
            async for piece in audio:
                yield piece


async def test_a_switch_in_one_answer_leaves_concurrent_answers_alone() -> None:
    primary, backup = FailsOn("Bad one."), ToneTTS(sample_rate=8000)
    tts = FallbackTTS([primary, backup])
    rates: dict[str, list[int]] = {}
    switched = anyio.Event()

    async def answer(name: str, texts: list[str]) -> None:
        for i, text in enumerate(texts):
            async with aclosing(tts.synthesize(text, i)) as audio:
                rates.setdefault(name, []).extend([c.sample_rate async for c in audio])
            if name == "a":
                switched.set()
            else:
                await switched.wait()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(answer, "a", ["Bad one.", "Then this."])
            tg.start_soon(answer, "b", ["Fine.", "Still fine."])
    assert set(rates["a"]) == {8000}  # switched at its first chunk, and stayed
    assert set(rates["b"]) == {16000}  # the other answer kept the first engine


class WillNotStart(ToneTTS):
    async def prepare(self) -> None:
        raise ProviderError("the voice server is not running", provider="tone")


async def test_an_engine_that_cannot_start_is_left_out_and_reported() -> None:
    switches: list[str] = []
    tts = FallbackTTS([WillNotStart(), EspeakTTS()], on_switch=switches.append)
    async with tts:
        assert tts.sample_rate == 22050
        audio = joined(await collect(tts.synthesize(FIRST)))
    assert np.array_equal(audio, await espeak_alone(FIRST))
    assert switches == [
        "TTS tone could not start (the voice server is not running); espeak speaks instead"
    ]


async def test_when_no_engine_can_start_the_first_error_is_raised() -> None:
    tts = FallbackTTS([WillNotStart(), WillNotStart()])
    with pytest.raises(ProviderError, match="not running"):
        await tts.prepare()


def test_make_tts_builds_a_chain_and_gives_network_options_to_the_first_network_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-official")
    tts = make_tts(
        "espeak:en-gb,openai:tts-1:nova,openai:tts-1",
        url="http://127.0.0.1:9/v1",
        format="wav",
        speed=1.5,
    )
    assert isinstance(tts, FallbackTTS) and tts.name == "espeak,openai,openai"
    espeak, remote, official = tts.engines
    assert isinstance(espeak, EspeakTTS) and espeak.voice == "en-gb" and espeak.rate_wpm == 262
    assert isinstance(remote, OpenAITTS) and isinstance(official, OpenAITTS)
    assert remote.base_url == "http://127.0.0.1:9/v1" and remote.response_format == "wav"
    assert official.base_url != remote.base_url and official.response_format == "pcm"


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        ("piper,,espeak", {}, "empty TTS spec in the fallback chain"),
        ("piper,espeak", {"url": "http://x/v1"}, "--tts-url given for the TTS chain"),
        ("piper,espeak", {"voice": "en-gb"}, "put each engine's voice in its spec"),
        ("espeak,nope", {}, "unknown TTS provider 'nope'"),
        ("espeak,elevenlabs:v", {"instructions": "Calm."}, "elevenlabs TTS engine has no"),
    ],
)
def test_a_bad_chain_is_a_config_error(spec: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_tts(spec, api_key="k" if "elevenlabs" in spec else None, **options)  # type: ignore[arg-type]


def test_the_cli_says_so_on_stderr_and_keeps_every_sentence(tmp_path: Path) -> None:
    app = TTSServer(Behaviour(drop_after=10_001, chunk_size=1000))
    out = tmp_path / "answer.wav"
    with serve(app) as url:
        result = voicepipe(
            "synth", ANSWER, "-o", str(out), "--llm", "text", "--chunking", "sentence",
            "--tts", "openai:tts-1,espeak", "--tts-url", f"{url}/v1",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "failed on chunk" in line]
    assert line.startswith("voicepipe: TTS openai failed on chunk 2 (")
    assert line.endswith("; espeak speaks from there")
    rate, samples = read_wav(out)
    # The file is at the first engine's rate, espeak's part resampled to it: every sentence,
    # none twice (within 10 ms of the parts' lengths: resampling rounds).
    espeak_seconds = sum(len(anyio.run(espeak_alone, text)) for text in (SECOND, THIRD)) / 22050
    assert rate == 24000
    assert abs(len(samples) / rate - (len(FIRST) * 0.01 + espeak_seconds)) < 0.01


def test_a_chain_paces_chunks_at_its_first_engines_speaking_rate() -> None:
    """The sentence buffer grows chunks from the voice's measured rate (Piper measures it
    as it loads); a chain speaks with its first engine, so it reports that one's."""
    first, second = ToneTTS(), EspeakTTS()
    assert FallbackTTS([first, second]).chars_per_second is None  # not measured: 15 a second
    first.chars_per_second = 17.5  # type: ignore[attr-defined]
    assert FallbackTTS([first, second]).chars_per_second == 17.5
