"""OllamaChat against a loopback server speaking /api/chat NDJSON; the NDJSON line decoder."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.llm.streams import collect, collect_until_error
from tests.servers.llm import DEFAULT_TEXT, FakeLLM
from voicepipe.errors import ConfigError, ProviderError, StreamInterrupted
from voicepipe.llm.ollama import NDJSONDecoder, OllamaChat, ollama_base_url


def chat(base_url: str, **kwargs: object) -> OllamaChat:
    return OllamaChat("llama3.2", base_url=base_url, **kwargs)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_streams_text_and_records_metrics(fake: FakeLLM, base_url: str) -> None:
    source = chat(base_url, max_tokens=64, temperature=0.3, keep_alive="10m")
    deltas = await collect(source)
    assert "".join(deltas) == DEFAULT_TEXT
    [request] = fake.requests
    assert request.path == "/api/chat"
    assert request.json["options"] == {"num_predict": 64, "temperature": 0.3}
    assert request.json["keep_alive"] == "10m"
    assert request.json["stream"] is True
    assert source.finish_reason == "stop"
    assert source.last_usage is not None
    assert source.last_usage["eval_count"] == len(fake.tokens())
    assert source.last_usage["eval_duration"] == 4535599000


@pytest.mark.anyio
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
async def test_one_byte_chunks(fake: FakeLLM, base_url: str, line_end: str) -> None:
    fake.behaviour.chunk_size = 1
    fake.behaviour.line_end = line_end
    fake.behaviour.text = "Grüße 👋 aus Köln."
    fake.behaviour.reasoning = "thinking is not spoken"
    deltas = await collect(chat(base_url))
    assert "".join(deltas) == "Grüße 👋 aus Köln."


@pytest.mark.anyio
@pytest.mark.parametrize(("after", "kind"), [(0, ProviderError), (3, StreamInterrupted)])
async def test_error_line(
    fake: FakeLLM, base_url: str, after: int, kind: type[ProviderError]
) -> None:
    fake.behaviour.error_after = after
    received, exc = await collect_until_error(chat(base_url))
    assert len(received) == after
    assert type(exc) is kind
    assert "an error was encountered while running" in str(exc)


@pytest.mark.anyio
async def test_malformed_line(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.malformed_after = 2
    received, exc = await collect_until_error(chat(base_url))
    assert len(received) == 2
    assert isinstance(exc, StreamInterrupted)
    assert "malformed line" in str(exc)


@pytest.mark.anyio
async def test_stream_without_done_line_is_interrupted(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.send_done = False
    received, exc = await collect_until_error(chat(base_url))
    assert "".join(received) == DEFAULT_TEXT
    assert isinstance(exc, StreamInterrupted)


@pytest.mark.anyio
async def test_dropped_connection(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.drop_after = 2
    received, exc = await collect_until_error(chat(base_url))
    assert len(received) == 2
    assert isinstance(exc, StreamInterrupted)


@pytest.mark.anyio
async def test_missing_model_suggests_pulling_it(fake: FakeLLM, base_url: str) -> None:
    fake.behaviour.error_status = 404
    fake.behaviour.error_message = 'model "llama3.2" not found, try pulling it first'
    _, exc = await collect_until_error(chat(base_url))
    assert isinstance(exc, ProviderError)
    assert exc.status == 404
    assert 'model "llama3.2" not found' in str(exc)
    assert "ollama pull llama3.2" in str(exc)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("", "http://localhost:11434"),
        ("localhost", "http://localhost:11434"),
        ("0.0.0.0:11434", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("example.com:8080", "http://example.com:8080"),
        ("http://10.0.0.5:11434/", "http://10.0.0.5:11434"),
        ("https://ollama.example.com/proxy", "https://ollama.example.com/proxy"),
    ],
)
def test_base_url_from_ollama_host(monkeypatch: pytest.MonkeyPatch, host: str, url: str) -> None:
    monkeypatch.setenv("OLLAMA_HOST", host)
    assert OllamaChat("m").base_url == url


def test_explicit_base_url_wins_and_bad_hosts_are_config_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "example.com")
    assert ollama_base_url("localhost:1234") == "http://localhost:1234"
    with pytest.raises(ConfigError, match="http"):
        ollama_base_url("ftp://example.com")
    with pytest.raises(ConfigError, match="OLLAMA_HOST"):
        ollama_base_url("localhost:notaport")


def test_decoder_handles_one_byte_feeds_crlf_blank_lines_and_a_final_line() -> None:
    data = '{"a":1}\r\n\n{"b":"ü"}\n{"c":3}'.encode()
    decoder = NDJSONDecoder()
    lines = [line for i in range(len(data)) for line in decoder.feed(data[i : i + 1])]
    lines += decoder.flush()
    assert [json.loads(line) for line in lines] == [{"a": 1}, {"b": "ü"}, {"c": 3}]
    assert decoder.flush() == []


@given(
    st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3), max_size=6),
    st.lists(st.integers(min_value=0, max_value=200), max_size=10),
)
def test_decoder_output_does_not_depend_on_chunking(
    objects: list[dict[str, str]], cuts: list[int]
) -> None:
    data = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects).encode()
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    decoder = NDJSONDecoder()
    lines = [line for a, b in itertools.pairwise(bounds) for line in decoder.feed(data[a:b])]
    lines += decoder.flush()
    assert [json.loads(line) for line in lines] == objects
