from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicepipe.audio.wavstream import WavFormat, WavFormatError, WavStreamParser

PLACEHOLDERS = [0, 0xFFFFFFFF, 0x7FFFFFFF, 0x7FFFF000]


def fmt_chunk(rate: int = 24000, channels: int = 1, bits: int = 16, tag: int = 1) -> bytes:
    block = channels * bits // 8
    body = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    return b"fmt " + struct.pack("<I", len(body)) + body


def chunk(tag: bytes, body: bytes) -> bytes:
    return tag + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")


def wav(
    pcm: bytes,
    *,
    data_size: int | None = None,
    before_data: bytes = b"",
    after_data: bytes = b"",
    fmt: bytes | None = None,
) -> bytes:
    size = len(pcm) if data_size is None else data_size
    return (
        b"RIFF\xff\xff\xff\xffWAVE"
        + (fmt_chunk() if fmt is None else fmt)
        + before_data
        + b"data"
        + struct.pack("<I", size)
        + pcm
        + after_data
    )


def parse(data: bytes, cuts: list[int]) -> tuple[bytes, WavStreamParser]:
    """Feed ``data`` cut at ``cuts``; return the PCM that came out and the parser."""
    parser = WavStreamParser()
    out = b""
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        piece = parser.feed(data[start:cut])
        out += piece
        start = max(start, cut)
    parser.finish()
    return out, parser


extra_chunks = st.lists(
    st.tuples(st.sampled_from([b"LIST", b"fact", b"JUNK", b"bext"]), st.binary(max_size=40)),
    max_size=3,
).map(lambda items: b"".join(chunk(tag, body) for tag, body in items))


@settings(max_examples=300, deadline=None)
@given(
    samples=st.binary(max_size=400).map(lambda b: b[: len(b) & ~1]),
    size=st.sampled_from([None, *PLACEHOLDERS]),
    before=extra_chunks,
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=12),
)
def test_any_cut_points_give_the_same_pcm(
    samples: bytes, size: int | None, before: bytes, cuts: list[int]
) -> None:
    out, parser = parse(wav(samples, data_size=size, before_data=before), cuts)
    assert out == samples
    assert parser.format == WavFormat(sample_rate=24000, channels=1)


@settings(max_examples=100, deadline=None)
@given(samples=st.binary(min_size=2, max_size=200).map(lambda b: b[: len(b) & ~1]))
def test_one_byte_chunks(samples: bytes) -> None:
    data = wav(samples, before_data=chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00Lavf\x00"))
    parser = WavStreamParser()
    out = b"".join(parser.feed(data[i : i + 1]) for i in range(len(data)))
    parser.finish()
    assert out == samples


def test_pcm_comes_out_before_the_stream_ends() -> None:
    parser = WavStreamParser()
    assert parser.feed(wav(b"")) == b""
    assert parser.in_data
    assert parser.feed(b"\x01\x02\x03") == b"\x01\x02"
    assert parser.feed(b"\x04") == b"\x03\x04"


def test_odd_sized_chunk_before_data_is_padded() -> None:
    # A 13-byte LIST chunk is followed by one pad byte, which must not shift the data header.
    out, _ = parse(wav(b"\x10\x00\x20\x00", before_data=chunk(b"LIST", b"x" * 13)), [])
    assert out == b"\x10\x00\x20\x00"


def test_real_data_size_drops_trailing_metadata() -> None:
    pcm = b"\x01\x00\x02\x00"
    out, _ = parse(wav(pcm, after_data=chunk(b"LIST", b"INFOabcd")), [5, 47, 48])
    assert out == pcm


@pytest.mark.parametrize("size", [4, 5])
@pytest.mark.parametrize("cuts", [[], [45], [44, 46, 47, 49]])
def test_too_small_data_size_is_ignored_when_audio_follows(size: int, cuts: list[int]) -> None:
    pcm = bytes(range(40)) + b"\x00\x80" * 5
    out, _ = parse(wav(pcm, data_size=size), cuts)
    assert out == pcm


def test_stereo_is_cut_at_whole_frames() -> None:
    parser = WavStreamParser()
    parser.feed(wav(b"", fmt=fmt_chunk(channels=2)))
    assert parser.format == WavFormat(sample_rate=24000, channels=2)
    assert parser.feed(b"\x01\x00\x02\x00\x03") == b"\x01\x00\x02\x00"
    assert parser.feed(b"\x00\x04\x00") == b"\x03\x00\x04\x00"


def test_extensible_pcm_is_accepted() -> None:
    body = struct.pack("<HHIIHH", 0xFFFE, 1, 16000, 32000, 2, 16)
    body += struct.pack("<HHI", 22, 16, 4) + struct.pack("<H", 1) + b"\x00" * 14
    out, parser = parse(wav(b"\x05\x00", fmt=chunk(b"fmt ", body)), [30])
    assert out == b"\x05\x00"
    assert parser.format == WavFormat(sample_rate=16000, channels=1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"ID3\x04" + b"\x00" * 40, "not a WAV stream"),
        (wav(b"", fmt=fmt_chunk(bits=8)), "16-bit PCM only"),
        (wav(b"", fmt=fmt_chunk(tag=3, bits=32)), "format tag 0x0003"),
        (b"RIFF\xff\xff\xff\xffWAVEdata\xff\xff\xff\xff", "before its fmt chunk"),
    ],
)
def test_unplayable_streams_say_why(data: bytes, message: str) -> None:
    with pytest.raises(WavFormatError, match=message):
        WavStreamParser().feed(data)


def test_stream_cut_before_data_is_an_error() -> None:
    parser = WavStreamParser()
    parser.feed(wav(b"")[:30])
    with pytest.raises(WavFormatError, match="ended after 30 bytes"):
        parser.finish()
