"""OpenTelemetry export against a real OTLP/HTTP receiver on loopback, decoded with the
OTLP protobuf definitions (opentelemetry-proto)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.cli.test_cli import voicepipe
from tests.servers import Receive, Scope, Send, read_body, serve
from tests.servers.tts import Behaviour, TTSServer
from tests.tts.chunks import FAST_RETRY
from voicepipe import timeline as tl
from voicepipe.apps import otel
from voicepipe.audio.sinks.null import NullSink
from voicepipe.errors import ProviderError
from voicepipe.llm.text import TextSource
from voicepipe.pipeline import Pipeline, Run
from voicepipe.tts.espeak import EspeakTTS
from voicepipe.tts.fallback import FallbackTTS
from voicepipe.tts.openai import OpenAITTS

pytestmark = pytest.mark.anyio

ANSWER = "Hello there. This is the second sentence. And a third one."


@dataclass
class Receiver:
    """An OTLP/HTTP trace receiver: POST /v1/traces with a protobuf body, decoded and kept."""

    requests: list[ExportTraceServiceRequest] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    status: int = 200

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body, _ = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        ok = scope["method"] == "POST" and scope["path"] == "/v1/traces"
        if ok and headers.get("content-type") == "application/x-protobuf":
            if headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            message = ExportTraceServiceRequest()
            message.ParseFromString(body)
            self.requests.append(message)
            self.headers.append(headers)
            status = self.status
        else:
            status = 404 if not ok else 415
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def spans(self) -> list[Span]:
        return [
            span
            for request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


def value(v: AnyValue) -> Any:
    return getattr(v, v.WhichOneof("value"))


def attributes(span: Span) -> dict[str, Any]:
    return {a.key: value(a.value) for a in span.attributes}


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    app = Receiver()
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    with serve(app) as url:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        yield app


async def speak(tts: Any = None, text: str = ANSWER) -> Run:
    pipe = Pipeline(TextSource(tokens_per_second=0), tts or EspeakTTS(), chunking="sentence")
    with anyio.fail_after(30):
        async with pipe:
            return await pipe.speak(text, NullSink(realtime=False))


async def test_a_run_is_one_trace_with_a_span_per_stage_and_the_ttfa_figures(
    receiver: Receiver,
) -> None:
    run = await speak()
    assert await otel.export([run], command="say", attributes={"tts": "espeak", "seed": None})

    (request,) = receiver.requests
    (resource,) = request.resource_spans
    service = {a.key: value(a.value) for a in resource.resource.attributes}
    assert service["service.name"] == "voicepipe"
    spans = receiver.spans()
    assert len({s.trace_id for s in spans}) == 1
    (root,) = [s for s in spans if s.name == "voicepipe.run"]
    assert root.parent_span_id == b""
    assert all(s.parent_span_id == root.span_id for s in spans if s is not root)
    names = sorted(s.name for s in spans if s is not root)
    assert names == ["llm.request", "sink", "tts.chunk", "tts.chunk", "tts.chunk"]

    m = run.metrics
    figures = attributes(root)
    assert figures["voicepipe.command"] == "say" and figures["voicepipe.tts"] == "espeak"
    assert "voicepipe.seed" not in figures
    assert figures["voicepipe.llm.provider"] == "text"
    for name in ("ttfa_ms", "ttft_ms", "first_chunk_ms", "tts_first_audio_ms", "total_ms"):
        assert figures[f"voicepipe.{name}"] == pytest.approx(getattr(m, name))
    assert figures["voicepipe.chunks"] == 3 and figures["voicepipe.rtf"] > 0
    assert "voicepipe.first_chunk_text" not in figures  # no text unless asked

    # Times are the timeline's: the root spans the run, TTFA is the sink span's start.
    assert (root.end_time_unix_nano - root.start_time_unix_nano) / 1e6 == pytest.approx(
        m.total_ms, abs=0.01
    )
    (sink,) = [s for s in spans if s.name == "sink"]
    assert m.ttfa_ms is not None
    assert (sink.start_time_unix_nano - root.start_time_unix_nano) / 1e6 == pytest.approx(
        m.ttfa_ms, abs=0.01
    )
    assert attributes(sink)["voicepipe.audio_s"] == pytest.approx(run.audio_seconds)
    chunks = sorted(
        (s for s in spans if s.name == "tts.chunk"), key=lambda s: s.start_time_unix_nano
    )
    assert [attributes(s)["voicepipe.index"] for s in chunks] == [0, 1, 2]
    assert [attributes(s)["voicepipe.chars"] for s in chunks] == [len(c) for c in run.chunks]
    for span in chunks:
        assert root.start_time_unix_nano <= span.start_time_unix_nano < span.end_time_unix_nano
        assert [e.name for e in span.events] == ["first audio"]
    (llm,) = [s for s in spans if s.name == "llm.request"]
    assert [e.name for e in llm.events][:1] == ["first token"]
    assert all("text" not in {a.key for a in e.attributes} for e in llm.events)


async def test_text_is_sent_only_when_asked(receiver: Receiver) -> None:
    run = await speak(text="Just one sentence.")
    assert await otel.export([run], text=True)
    (llm,) = [s for s in receiver.spans() if s.name == "llm.request"]
    (chunk,) = [e for e in llm.events if e.name == "text.chunk"]
    assert {a.key: value(a.value) for a in chunk.attributes}["text"] == "Just one sentence."


async def test_runs_are_separate_traces_in_one_request(receiver: Receiver) -> None:
    runs = [await speak(text="One."), await speak(text="Two.")]
    assert await otel.export(runs, command="bench")
    assert len(receiver.requests) == 1
    roots = [s for s in receiver.spans() if s.name == "voicepipe.run"]
    assert len(roots) == 2 and roots[0].trace_id != roots[1].trace_id


async def test_a_fallback_is_an_event_on_its_chunks_span(receiver: Receiver) -> None:
    with serve(TTSServer(Behaviour(error_status=500))) as url:
        remote = OpenAITTS(base_url=f"{url}/v1", retry=FAST_RETRY)
        run = await speak(FallbackTTS([remote, EspeakTTS()]), "Hi there.")
    assert await otel.export([run])
    (chunk,) = [s for s in receiver.spans() if s.name == "tts.chunk"]
    assert [e.name for e in chunk.events] == ["fallback", "first audio"]
    data = {a.key: value(a.value) for a in chunk.events[0].attributes}
    assert (data["stage"], data["failed"], data["next"], data["index"]) == (
        "tts",
        "openai",
        "espeak",
        0,
    )
    assert list(run.timeline.all(tl.FALLBACK))


async def test_a_failed_stage_marks_the_trace_as_an_error(receiver: Receiver) -> None:
    with serve(TTSServer(Behaviour(error_status=400, error_message="no such voice"))) as url:
        pipe = Pipeline(TextSource(0), OpenAITTS(base_url=f"{url}/v1", retry=FAST_RETRY))
        async with pipe:
            with pytest.raises(ProviderError, match="no such voice"):
                async with pipe.run("Hi there.", NullSink(realtime=False)) as run:
                    pass
    assert await otel.export([run])  # a failed run is exported all the same
    spans = receiver.spans()
    (root,) = [s for s in spans if s.name == "voicepipe.run"]
    (chunk,) = [s for s in spans if s.name == "tts.chunk"]
    for span in (root, chunk):
        assert span.status.code == span.status.STATUS_CODE_ERROR
        assert "no such voice" in span.status.message
    assert [e.name for e in root.events] == ["error"]


async def test_a_receiver_that_refuses_is_reported_as_not_exported(receiver: Receiver) -> None:
    receiver.status = 400
    assert not await otel.export([await speak(text="One.")])


async def test_without_an_endpoint_nothing_is_sent(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = await speak(text="One.")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    assert not await otel.export([run])
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not await otel.export([run])
    assert receiver.requests == []


PROBE = """
import sys, anyio
from voicepipe.apps import otel
from voicepipe.run import Run
from voicepipe import timeline as tl
run = Run(); run.timeline.mark(tl.LLM_REQUEST, provider="text"); run.timeline.mark(tl.RUN_END)
print(anyio.run(lambda: otel.export([run])), sys.modules.get("opentelemetry") is not None)
"""


@pytest.mark.parametrize(
    ("env", "blocked", "expected"),
    [
        ({}, False, "False False"),  # unset: not even imported
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, True, "False False"),  # no extra
    ],
)
def test_no_endpoint_or_no_extra_costs_nothing(
    env: dict[str, str], blocked: bool, expected: str
) -> None:
    code = ("import sys; sys.modules['opentelemetry'] = None\n" if blocked else "") + PROBE
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == expected.split()


def test_the_cli_exports_each_run(receiver: Receiver, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEPIPE_")}
    result = voicepipe(
        "synth", "Hello there.", "-o", str(tmp_path / "a.wav"), "--llm", "text",
        "--tts", "espeak", env={**env, "VOICEPIPE_TRACE_DB": str(tmp_path / "t.sqlite")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (root,) = [s for s in receiver.spans() if s.name == "voicepipe.run"]
    figures = attributes(root)
    assert figures["voicepipe.command"] == "synth" and figures["voicepipe.tts"] == "espeak"
    assert figures["voicepipe.ttfa_ms"] > 0


def test_the_cli_says_in_one_line_when_the_extra_is_missing(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from voicepipe.cli import main\n"
        f"sys.exit(main(['synth', 'Hi.', '-o', {str(tmp_path / 'a.wav')!r}, '--llm', 'text', "
        "'--tts', 'espeak']))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "VOICEPIPE_"))}
    env = {**clean, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "OpenTelemetry" in line]
    assert line == (
        "voicepipe: OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry exporter is not "
        "installed: pip install 'voicepipe[otel]'"
    )
    assert (tmp_path / "a.wav").stat().st_size > 44


def test_bench_exports_every_measured_run(receiver: Receiver, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEPIPE_")}
    result = voicepipe(
        "bench", "Hello there.", "-n", "2", "--warmup", "1", "--llm", "text", "--tts", "espeak",
        "--no-trace", env={**env, "VOICEPIPE_TRACE_DB": str(tmp_path / "t.sqlite")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    roots = [s for s in receiver.spans() if s.name == "voicepipe.run"]
    assert len(roots) == 2 and len({s.trace_id for s in roots}) == 2  # not the warm-up
    assert {attributes(s)["voicepipe.command"] for s in roots} == {"bench"}
    assert {attributes(s)["voicepipe.tts"] for s in roots} == {"espeak"}


def test_chat_exports_each_turn_without_storing_it(receiver: Receiver, tmp_path: Path) -> None:
    from tests.audio.conftest import alsa_without_output_env

    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEPIPE_")}
    env |= {**alsa_without_output_env(tmp_path), "VOICEPIPE_TRACE_DB": str(tmp_path / "t.db")}
    result = voicepipe(
        "chat", "--llm", "text", "--tts", "espeak", env=env,
        stdin="Hello there.\nA second turn.\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    roots = [s for s in receiver.spans() if s.name == "voicepipe.run"]
    assert [attributes(s)["voicepipe.command"] for s in roots] == ["chat", "chat"]
    assert [attributes(s)["voicepipe.chunks"] for s in roots] == [1, 1]
    assert not (tmp_path / "t.db").exists()  # no --trace: exported, not stored
