"""Property tests for the pure cores the other suites do not fuzz with arbitrary input.

Whatever bytes or JSON a server sends, these raise only their documented errors.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from voicepipe.audio.wavstream import WavFormatError, WavStreamParser
from voicepipe.llm.ollama import NDJSONDecoder
from voicepipe.transport.keys import redact
from voicepipe.transport.retry import retry_after as _retry_after
from voicepipe.transport.wording import body_message as _parse_error_body
from voicepipe.transport.wording import provider_message
from voicepipe.tts.httpaudio import content_type_rate

json_values: Any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
error_keys = st.sampled_from(["error", "detail", "message", "msg", "type", "code", "status"])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6))
def test_wav_parser_on_any_bytes_raises_only_wav_format_error(data: bytes, cuts: list[int]) -> None:
    parser = WavStreamParser()
    bounds = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    out = b""
    try:
        for a, b in itertools.pairwise(bounds):
            out += parser.feed(data[a:b])
        parser.finish()
    except WavFormatError:
        return
    fmt = parser.format
    if out:
        assert fmt is not None and len(out) % fmt.frame_size == 0


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, st.dictionaries(error_keys, json_values, max_size=4)))
def test_provider_message_of_any_json_is_text_or_none(payload: object) -> None:
    message = provider_message(payload)
    assert message is None or (isinstance(message, str) and message.strip())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.text(max_size=20))
def test_error_body_of_any_bytes_is_one_bounded_message(body: bytes, reason: str) -> None:
    message = _parse_error_body(body, reason)
    assert isinstance(message, str) and len(message) <= 301 + len(reason)


@given(st.dictionaries(st.sampled_from(["retry-after", "retry-after-ms"]), st.text(max_size=30)))
def test_retry_after_of_any_header_is_seconds_or_none(headers: dict[str, str]) -> None:
    try:
        parsed = httpx.Headers(headers)
    except (UnicodeEncodeError, ValueError):
        return  # not sendable as a header at all
    value = _retry_after(parsed)
    assert value is None or isinstance(value, float)


@given(st.text(max_size=60))
def test_content_type_rate_is_positive_or_none(content_type: str) -> None:
    try:
        response = httpx.Response(200, headers={"content-type": content_type})
    except (UnicodeEncodeError, ValueError):
        return
    rate = content_type_rate(response)
    assert rate is None or rate > 0


@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6))
def test_ndjson_decoder_on_any_bytes_gives_lines(data: bytes, cuts: list[int]) -> None:
    decoder = NDJSONDecoder()
    bounds = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    lines: list[Any] = []
    for a, b in itertools.pairwise(bounds):
        lines += decoder.feed(data[a:b])
    lines += decoder.flush()
    for line in lines:
        assert line and "\n" not in str(line)


@given(st.text(max_size=80), st.lists(st.text(min_size=1, max_size=12), max_size=3))
def test_redact_removes_every_secret(text: str, secrets: list[str]) -> None:
    out = redact(text + "".join(secrets), secrets)
    for secret in secrets:
        # A secret may survive only as part of the replacement marker itself.
        assert secret not in out or secret in "***"
