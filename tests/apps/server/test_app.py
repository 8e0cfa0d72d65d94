"""`voicepipe serve`'s API over real HTTP: uvicorn on loopback, an httpx client, loopback LLMs."""

from __future__ import annotations

import base64
import json
import shutil
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import numpy as np
import pytest

from tests.engines import ToneTTS, tone_for
from tests.servers import serve
from tests.servers.llm import Behaviour, FakeLLM
from voicepipe.apps.server.app import ServerSettings, create_app
from voicepipe.apps.server.guards import HTTPError, RateLimit
from voicepipe.errors import ConfigError
from voicepipe.lifecycle import Lifecycle
from voicepipe.llm.base import Message
from voicepipe.llm.limited import LimitedSource
from voicepipe.llm.openai import OpenAIChat
from voicepipe.llm.text import TextSource
from voicepipe.tts.base import TTSEngine

pytestmark = pytest.mark.anyio

ANSWER = "Hello there, my friend. The sky is blue because of Rayleigh scattering. That is all."
RATE = 24000  # ToneTTS at OpenAI's pcm rate, so /v1/audio/speech needs no resampling


@dataclass
class SSE:
    event: str
    data: dict[str, Any]


async def read_events(response: httpx.Response) -> AsyncIterator[SSE]:
    """The events of a text/event-stream response (the server sends one data line each)."""
    event = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield SSE(event, json.loads(line[6:]))


async def chat(url: str, body: dict[str, Any], **headers: str) -> list[SSE]:
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("POST", f"{url}/v1/chat/stream", json=body, headers=headers) as r,
    ):
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        return [e async for e in read_events(r)]


def pcm(events: list[SSE]) -> np.ndarray:
    data = b"".join(base64.b64decode(e.data["data"]) for e in events if e.event == "audio")
    return np.frombuffer(data, "<i2")


@pytest.fixture
def upstream(fake: FakeLLM, llm_server: tuple[FakeLLM, str]) -> OpenAIChat:
    return OpenAIChat("x", base_url=f"{llm_server[1]}/v1")


@pytest.fixture
def tone() -> ToneTTS:
    return ToneTTS(RATE)


@pytest.fixture
def url(tone: ToneTTS) -> Iterator[str]:
    app = create_app({"text": TextSource(0), "slow": TextSource(20)}, {"tone": tone})
    with serve(app) as base:
        yield base


async def test_chat_events_come_in_order_with_the_audio_of_each_chunk(
    url: str, tone: ToneTTS
) -> None:
    with anyio.fail_after(10):
        events = await chat(url, {"prompt": ANSWER, "chunking": "sentence"})
    names = [e.event for e in events]
    assert names[-2:] == ["metrics", "done"] and events[-1].data == {"ok": True}
    assert "error" not in names
    texts = [e.data for e in events if e.event == "text"]
    assert [t["index"] for t in texts] == list(range(len(texts))) and len(texts) == 3
    assert " ".join(t["text"] for t in texts) == ANSWER
    # Each chunk's text comes before its audio; audio is in order and numbered without gaps.
    seen: set[int] = set()
    audio = [e.data for e in events if e.event == "audio"]
    for e in events:
        if e.event == "text":
            seen.add(e.data["index"])
        elif e.event == "audio":
            assert e.data["index"] in seen
            assert e.data["sample_rate"] == RATE and e.data["format"] == "pcm_s16le"
    assert [a["seq"] for a in audio] == list(range(len(audio)))
    assert [a["index"] for a in audio] == sorted(a["index"] for a in audio)
    expected = np.concatenate([tone_for(t["text"], RATE, tone.seconds_per_word) for t in texts])
    np.testing.assert_array_equal(pcm(events), expected)
    metrics = events[-2].data
    assert metrics["chunks"] == 3
    assert 0 < metrics["ttfa_ms"] <= metrics["server_ttfa_ms"]
    assert metrics["audio_ms"] == pytest.approx(1000 * len(expected) / RATE)


async def test_messages_choose_among_the_servers_providers_only(url: str) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First question."},
        {"role": "assistant", "content": "An answer."},
        {"role": "user", "content": "Second question, spoken back."},
    ]
    with anyio.fail_after(10):
        events = await chat(url, {"messages": messages, "llm": "slow", "tts": "tone"})
        texts = " ".join(e.data["text"] for e in events if e.event == "text")
        assert texts == "Second question, spoken back."
        async with httpx.AsyncClient(base_url=url) as client:
            for body, word in [
                ({"prompt": "Hi.", "llm": "openai:gpt-4o"}, "unknown llm"),
                ({"prompt": "Hi.", "tts": "piper"}, "unknown voice"),
                ({"prompt": "Hi.", "voice": "nobody"}, "unknown voice"),
                ({"prompt": "Hi.", "chunking": "words"}, "chunking"),
                ({"prompt": "  "}, "prompt"),
                ({"messages": []}, "messages"),
                ({"messages": [{"role": "root", "content": "x"}]}, "role"),
                ({"messages": [{"role": "assistant", "content": "x"}]}, "user message"),
            ]:
                r = await client.post("/v1/chat/stream", json=body)
                assert r.status_code == 400, body
                assert word in r.json()["error"]["message"], body
            r = await client.post(
                "/v1/chat/stream",
                content=b"{not json",
                headers={"content-type": "application/json"},
            )
            assert r.status_code == 400
            voices = (await client.get("/v1/voices")).json()
    assert [v["id"] for v in voices["voices"]] == ["tone"]
    assert voices["voices"][0] == {
        "id": "tone",
        "engine": "tone",
        "sample_rate": RATE,
        "default": True,
    }
    assert [llm["id"] for llm in voices["llms"]] == ["text", "slow"]


async def test_an_llm_failure_mid_answer_is_an_error_event_after_the_audio_so_far(
    fake: FakeLLM, upstream: OpenAIChat
) -> None:
    fake.behaviour = Behaviour(text=ANSWER, drop_after=10)
    app = create_app({"openai:x": upstream}, {"tone": ToneTTS(RATE)})
    with serve(app) as url, anyio.fail_after(10):
        events = await chat(url, {"prompt": "Tell me."})
    names = [e.event for e in events]
    assert names[-2:] == ["metrics", "done"] and names.count("error") == 1
    error = events[names.index("error")].data
    assert error["stage"] == "llm" and error["type"] == "StreamInterrupted"
    assert events[-1].data == {"ok": False}
    # What the model wrote before the drop was still spoken (its tail after the error).
    spoken = " ".join(e.data["text"] for e in events if e.event == "text")
    assert spoken == " ".join(ANSWER.split()[:10])
    assert names.index("audio") < names.index("error")
    assert fake.requests[0].json["messages"] == [{"role": "user", "content": "Tell me."}]


async def test_a_tts_failure_is_an_error_event() -> None:
    app = create_app(TextSource(0), ToneTTS(RATE, fail_at_index=1))
    with serve(app) as url, anyio.fail_after(10):
        events = await chat(url, {"prompt": ANSWER, "chunking": "sentence"})
    errors = [e.data for e in events if e.event == "error"]
    assert errors == [
        {
            "stage": "tts",
            "type": "ProviderError",
            "message": errors[0]["message"],
            "retryable": False,
        }
    ]
    # The client hears what failed, in the server's words; the engine's own text stays in the log.
    assert errors[0]["message"] == "the tone provider failed or could not be reached; try again"
    assert {e.data["index"] for e in events if e.event == "audio"} == {0}
    assert events[-1].data == {"ok": False}


async def test_a_client_that_disconnects_cancels_its_pipeline(
    fake: FakeLLM, upstream: OpenAIChat
) -> None:
    # The upstream writes a sentence and a word, then keeps the connection open, silent.
    fake.behaviour = Behaviour(text=ANSWER, hang_after=5)
    app = create_app({"openai:x": upstream}, {"tone": ToneTTS(RATE)})
    sessions = app.state.server.sessions
    with serve(app) as url, anyio.fail_after(10):
        async with (
            httpx.AsyncClient(timeout=10) as client,
            client.stream("POST", f"{url}/v1/chat/stream", json={"prompt": "Go."}) as r,
        ):
            async for event in read_events(r):
                if event.event == "audio":
                    break  # the answer is under way: hang up (leaving the block closes it)
        # Hanging up closed the server's request to the LLM, and freed the session.
        assert await anyio.to_thread.run_sync(fake.disconnected.wait, 5)
        assert await anyio.to_thread.run_sync(sessions.idle.wait, 5)
    assert sessions.active == 0 and sessions.served == 1


async def test_sessions_over_the_limit_get_429_with_retry_after(
    fake: FakeLLM, upstream: OpenAIChat
) -> None:
    fake.behaviour = Behaviour(text=ANSWER, hang_after=5)
    settings = ServerSettings(max_sessions=1, retry_after_s=3)
    app = create_app({"openai:x": upstream, "text": TextSource(0)}, ToneTTS(RATE), settings)
    with serve(app) as url, anyio.fail_after(10):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            async with client.stream("POST", "/v1/chat/stream", json={"prompt": "Go."}) as r:
                events = read_events(r)  # kept referenced: the response stays open
                async for event in events:
                    if event.event == "text":
                        break  # the one slot is taken
                busy = await client.post("/v1/chat/stream", json={"prompt": "Me too."})
                assert busy.status_code == 429
                assert busy.headers["retry-after"] == "3"
                speech = await client.post("/v1/audio/speech", json={"input": "Hi."})
                assert speech.status_code == 429
                full = await client.get("/healthz")  # a balancer takes it out of rotation
                assert full.status_code == 503 and full.headers["retry-after"] == "3"
                health = full.json()
                assert health["status"] == "full"
                assert health["sessions"] == 1 and health["max_sessions"] == 1
                alive = await client.get("/healthz", params={"live": "1"})  # but not restarted
                assert alive.status_code == 200 and alive.json()["status"] == "full"
            assert await anyio.to_thread.run_sync(app.state.server.sessions.idle.wait, 5)
            after = await chat(url, {"prompt": "Now me.", "llm": "text"})
            assert after[-1].data == {"ok": True}
            async with httpx.AsyncClient(base_url=url) as client:
                freed = await client.get("/healthz")
            assert freed.status_code == 200 and freed.json()["status"] == "ok"


async def test_request_bodies_over_the_limit_are_refused() -> None:
    app = create_app(TextSource(0), ToneTTS(RATE), ServerSettings(max_body_bytes=1000))
    big = {"prompt": "word " * 400}

    async def chunked() -> AsyncIterator[bytes]:
        yield json.dumps(big).encode()  # no content-length: read up to the limit only

    with serve(app) as url, anyio.fail_after(10):
        async with httpx.AsyncClient(base_url=url) as client:
            r = await client.post("/v1/chat/stream", json=big)
            assert r.status_code == 413 and "1000 bytes" in r.json()["error"]["message"]
            json_type = {"content-type": "application/json"}
            r = await client.post("/v1/chat/stream", content=chunked(), headers=json_type)
            assert r.status_code == 413
            r = await client.post("/v1/audio/speech", json={"input": "x" * 2000})
            assert r.status_code == 413
            assert (await client.post("/v1/chat/stream", json={"prompt": "Short."})).is_success


async def test_wrong_content_types_and_malformed_json_are_refused() -> None:
    app = create_app(TextSource(0), ToneTTS(RATE), ServerSettings())
    with serve(app) as url, anyio.fail_after(10):
        async with httpx.AsyncClient(base_url=url) as client:
            r = await client.post(
                "/v1/chat/stream", content=b"prompt=hi", headers={"content-type": "text/plain"}
            )
            assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
            r = await client.post(
                "/v1/audio/speech", content=b"{nope", headers={"content-type": "application/json"}
            )
            assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
            r = await client.post("/v1/chat/stream", json=["a", "list"])
            assert r.status_code == 400


async def test_each_client_is_rate_limited_with_retry_after() -> None:
    app = create_app(TextSource(0), ToneTTS(RATE), ServerSettings(rate_per_minute=3))
    with serve(app) as url, anyio.fail_after(10):
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(3):
                r = await client.post(
                    "/v1/audio/speech", json={"input": "Hi.", "response_format": "pcm"}
                )
                assert r.status_code == 200
            r = await client.post("/v1/chat/stream", json={"prompt": "Hi."})
            assert r.status_code == 429
            assert int(r.headers["retry-after"]) >= 1
            assert "3 a minute" in r.json()["error"]["message"]
            assert (await client.get("/healthz")).is_success  # health checks are not limited


def test_the_rate_limit_refills_over_time() -> None:
    now = [0.0]
    limit = RateLimit(60, clock=lambda: now[0])  # one a second
    for _ in range(60):
        limit.take("a")
    with pytest.raises(HTTPError) as refused:
        limit.take("a")
    assert refused.value.headers == {"retry-after": "1"}
    limit.take("b")  # another client has its own bucket
    now[0] = 1.0
    limit.take("a")
    RateLimit(0).take("a")  # 0: no limit


async def test_the_api_key_is_required_and_never_echoed() -> None:
    key = "sk-serve-secret-123"
    app = create_app(TextSource(0), ToneTTS(RATE), ServerSettings(api_key=key))
    assert key not in repr(app.state.server.settings)
    with serve(app) as url, anyio.fail_after(10):
        async with httpx.AsyncClient(base_url=url) as client:
            for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": key}):
                r = await client.get("/v1/voices", headers=headers)
                assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
                assert key not in r.text
                r = await client.post("/v1/chat/stream", json={"prompt": "Hi."}, headers=headers)
                assert r.status_code == 401
            # The page and the health check stay open (the page asks for the key).
            assert (await client.get("/healthz")).json()["auth"] is True
            assert (await client.get("/")).status_code == 200
            assert (await client.get("/web/app.js")).status_code == 200
            good = {"authorization": f"Bearer {key}"}
            assert (await client.get("/v1/voices", headers=good)).status_code == 200
        events = await chat(url, {"prompt": "Hi."}, authorization=f"Bearer {key}")
        assert events[-1].data == {"ok": True}


async def test_cors_allows_the_configured_origins_only() -> None:
    settings = ServerSettings(api_key="k", cors_origins=("https://app.example",))
    app = create_app(TextSource(0), ToneTTS(RATE), settings)
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    with serve(app) as url, anyio.fail_after(10):
        async with httpx.AsyncClient(base_url=url) as client:
            ok = await client.options(
                "/v1/chat/stream", headers={"origin": "https://app.example", **preflight}
            )
            assert ok.status_code == 200
            assert ok.headers["access-control-allow-origin"] == "https://app.example"
            bad = await client.options(
                "/v1/chat/stream", headers={"origin": "https://evil.example", **preflight}
            )
            assert "access-control-allow-origin" not in bad.headers
            # An auth failure still carries CORS headers, so the page can read the reason.
            denied = await client.get("/v1/voices", headers={"origin": "https://app.example"})
            assert denied.status_code == 401
            assert denied.headers["access-control-allow-origin"] == "https://app.example"


async def test_concurrent_sessions_are_isolated(url: str) -> None:
    numbers = "zero one two three four five six seven".split()  # digits would be verbalized
    prompts = [f"Conversation number {n} says hello. It ends here." for n in numbers]
    results: dict[int, list[SSE]] = {}

    async def one(i: int) -> None:
        results[i] = await chat(url, {"prompt": prompts[i], "llm": "slow"})

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for i in range(len(prompts)):
                tg.start_soon(one, i)
    for i, events in results.items():
        text = " ".join(e.data["text"] for e in events if e.event == "text")
        assert text == prompts[i]
        assert events[-1].data == {"ok": True}
        expected = np.concatenate(
            [tone_for(e.data["text"], RATE, 0.05) for e in events if e.event == "text"]
        )
        np.testing.assert_array_equal(pcm(events), expected)


class CountingSource(Lifecycle):
    """Streams a short answer; records how many streams ran at once."""

    name = "counting"

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.prepared = 0
        self.closed = 0

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            for word in ["One", " two", " three."]:
                await anyio.sleep(0.01)  # the pace of the stream, not a synchronisation
                yield word
        finally:
            self.running -= 1

    async def prepare(self) -> None:
        self.prepared += 1

    async def aclose(self) -> None:
        self.closed += 1


@pytest.fixture
def limited() -> tuple[CountingSource, Any]:
    """An app whose one LLM takes one stream at a time. Built outside the test's event loop:
    the limiter then binds to the loop that first uses it, the server's (asyncio, in uvicorn's
    thread), whichever backend the test runs on."""
    source = CountingSource()
    return source, create_app({"local": LimitedSource(source, 1)}, ToneTTS(RATE))


async def test_a_limited_source_serves_one_stream_at_a_time(
    limited: tuple[CountingSource, Any],
) -> None:
    source, app = limited
    with serve(app) as url, anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(chat, url, {"prompt": "Go."})
    assert source.most == 1


async def test_models_load_once_at_startup_and_close_at_shutdown() -> None:
    source = CountingSource()
    app = create_app({"counting": source}, ToneTTS(RATE))
    with anyio.fail_after(5):
        async with app.router.lifespan_context(app):
            assert (source.prepared, source.closed) == (1, 0)
    assert (source.prepared, source.closed) == (1, 1)


# -- /v1/audio/speech ------------------------------------------------------------------------

SPEECH = "Hello there. This is the second sentence."


async def speech(url: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await client.post("/v1/audio/speech", json=body)


def tones(texts: list[str]) -> bytes:
    return np.concatenate([tone_for(t, RATE, 0.05) for t in texts]).astype("<i2").tobytes()


async def test_speech_pcm_is_the_synthesized_text(url: str, tone: ToneTTS) -> None:
    body = {"model": "tts-1", "input": SPEECH, "voice": "alloy", "response_format": "pcm"}
    with anyio.fail_after(10):
        r = await speech(url, body)
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/pcm" and r.headers["x-sample-rate"] == "24000"
    assert tone.requests and " ".join(tone.requests) == SPEECH
    assert r.content == tones(tone.requests)


async def test_speech_wav_streams_with_unknown_sizes(url: str, tone: ToneTTS) -> None:
    with anyio.fail_after(10):
        r = await speech(url, {"input": SPEECH, "voice": "tone", "response_format": "wav"})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    riff, riff_size, wave_, _, _, fmt, channels, rate, _, _, bits, data, data_size = struct.unpack(
        "<4sI4s4sIHHIIHH4sI", r.content[:44]
    )
    assert (riff, wave_, data) == (b"RIFF", b"WAVE", b"data")
    assert riff_size == data_size == 0xFFFFFFFF
    assert (fmt, channels, rate, bits) == (1, 1, RATE, 16)
    assert r.content[44:] == tones(tone.requests)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="mp3 output needs ffmpeg")
async def test_speech_mp3_is_encoded_by_ffmpeg(url: str, tone: ToneTTS) -> None:
    with anyio.fail_after(20):
        r = await speech(url, {"input": SPEECH, "voice": "alloy"})  # mp3: OpenAI's default
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
    assert r.content[:3] == b"ID3" or r.content[:2] in (b"\xff\xfb", b"\xff\xf3")
    from voicepipe.audio.decode import decode_audio

    with anyio.fail_after(10):
        samples, rate = await decode_audio(r.content, ffmpeg=shutil.which("ffmpeg") or "ffmpeg")
    seconds = len(tones(tone.requests)) / 2 / RATE
    assert len(samples) / rate == pytest.approx(seconds, abs=0.1)


async def test_speech_refuses_what_it_cannot_do(url: str) -> None:
    refused: list[tuple[dict[str, Any], str]] = [
        ({"input": ""}, "input"),
        ({"input": "Hi.", "voice": "nobody"}, "unknown voice"),
        ({"input": "Hi.", "response_format": "flac"}, "response_format"),
        ({"input": "Hi.", "speed": 9}, "speed"),
        ({"input": "Hi.", "speed": 1.5}, "speed"),
        ({"input": "x" * 5000}, "4096"),
    ]
    with anyio.fail_after(10):
        for body, word in refused:
            r = await speech(url, body)
            assert r.status_code == 400, body
            assert word in r.json()["error"]["message"], body


async def test_a_speech_failure_before_any_audio_is_a_502() -> None:
    app = create_app(TextSource(0), ToneTTS(RATE, fail_at_index=0))
    with serve(app) as url, anyio.fail_after(10):
        r = await speech(url, {"input": SPEECH, "response_format": "pcm"})
    assert r.status_code == 502
    assert r.json()["error"] == {
        "message": "the tone provider failed or could not be reached; try again",
        "type": "ProviderError",
    }


async def test_the_page_is_served(url: str) -> None:
    with anyio.fail_after(10):
        async with httpx.AsyncClient(base_url=url) as client:
            page = await client.get("/")
            script = await client.get("/web/app.js")
            missing = await client.get("/web/nothing.js")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="web/app.js"' in page.text
    assert script.status_code == 200 and "v1/chat/stream" in script.text
    assert missing.status_code == 404


def test_the_command_offers_the_providers_it_was_given() -> None:
    from voicepipe.cli import build_parser
    from voicepipe.cli.serve import build_providers

    command = "serve --llm text --llm openai:x --llm-url http://127.0.0.1:9/v1"
    command += " --tts espeak --tts espeak:de --cors-origin *"
    args = build_parser().parse_args(command.split())
    llms, ttses = build_providers(args)
    assert list(llms) == ["text", "openai:x"] and list(ttses) == ["espeak", "espeak:de"]
    assert args.cors_origin == ["*"] and args.max_sessions == 16 and args.port == 8000


def test_the_command_passes_keys_voice_options_and_sampling_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from voicepipe.cli import build_parser
    from voicepipe.cli.serve import build_providers

    monkeypatch.setenv("GATEWAY_KEY", "sk-gateway-123")
    command = "serve --llm openai:x --llm-url http://127.0.0.1:9/v1 --llm-key-env GATEWAY_KEY"
    command += " --temperature 0.3 --tts espeak --tts-speed 1.5"
    llms, ttses = build_providers(build_parser().parse_args(command.split()))
    llm = llms["openai:x"]
    assert llm._key_headers() == {"Authorization": "Bearer sk-gateway-123"}  # type: ignore[attr-defined]
    assert "sk-gateway" not in repr(llm)
    assert getattr(llm, "temperature", None) == 0.3
    assert getattr(ttses["espeak"], "rate_wpm", None) == round(175 * 1.5)
    monkeypatch.delenv("GATEWAY_KEY")
    with pytest.raises(ConfigError, match="GATEWAY_KEY"):
        build_providers(build_parser().parse_args(command.split()))


async def test_a_chain_that_switches_says_so_in_the_servers_log(
    tone: ToneTTS, capsys: pytest.CaptureFixture[str]
) -> None:
    from voicepipe.cli import build_parser
    from voicepipe.cli.serve import build_providers

    # The chain's first LLM is a closed port: the session is answered by the second, and the
    # operator reads why on stderr (where `voicepipe serve` logs).
    command = "serve --llm openai:x,text --llm-url http://127.0.0.1:9/v1 --tts espeak"
    llms, _ = build_providers(build_parser().parse_args(command.split()))
    app = create_app(llms, {"tone": tone})
    with serve(app) as url, anyio.fail_after(20):
        events = await chat(url, {"prompt": "Still answered.", "chunking": "sentence"})
    assert [e.data["text"] for e in events if e.event == "text"] == ["Still answered."]
    assert "LLM openai failed before answering" in (log := capsys.readouterr().err)
    assert log.rstrip().endswith("text answers instead")


async def test_the_operators_lexicon_is_said_in_every_answer(tone: ToneTTS) -> None:
    from voicepipe.text.lexicon import Lexicon

    settings = ServerSettings(lexicon=Lexicon.from_entries({"Nginx": "engine x"}))
    app = create_app({"text": TextSource(0)}, {"tone": tone}, settings)
    with serve(app) as url, anyio.fail_after(10):
        events = await chat(url, {"prompt": "We run Nginx at home.", "chunking": "sentence"})
    spoken = " ".join(e.data["text"] for e in events if e.event == "text")
    assert spoken == "We run engine x at home."


@pytest.fixture
def piper() -> TTSEngine:
    """The embedded voice, made outside the test's event loop: its load lock binds to the
    server's loop (asyncio, in uvicorn's thread), whichever backend the test runs on."""
    from voicepipe.providers import make_tts

    return make_tts("piper")


@pytest.mark.slow
async def test_the_real_piper_voice_streams_from_both_endpoints(piper: TTSEngine) -> None:
    app = create_app(TextSource(0), {"piper": piper})
    # The lifespan loads the voice once, in the server's loop, before the first request.
    with serve(app, lifespan="on") as url, anyio.fail_after(60):
        events = await chat(url, {"prompt": SPEECH})
        r = await speech(url, {"input": SPEECH, "voice": "piper", "response_format": "wav"})
    audio = pcm(events)
    assert events[-1].data == {"ok": True}
    assert len(audio) / piper.sample_rate > 1.0 and np.abs(audio).max() > 1000
    assert r.status_code == 200 and int(r.headers["x-sample-rate"]) == piper.sample_rate
    assert len(r.content[44:]) / 2 / piper.sample_rate > 1.0
