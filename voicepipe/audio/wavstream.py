"""Incremental parser for WAV streams of unknown length, as TTS servers send them.

Streaming servers cannot know the final size when they write the header, so they put a
placeholder there (0xFFFFFFFF, 0x7FFFFFFF, 0, or some other huge constant) and often a
``LIST`` chunk before ``data``. The parser walks the RIFF chunks, reads ``fmt `` and then
hands out the PCM that follows ``data`` as it arrives, cut at whole frames.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum, auto

__all__ = ["WavFormat", "WavFormatError", "WavStreamParser"]

_PCM = 0x0001
_EXTENSIBLE = 0xFFFE
# A data size at or above this is a streaming placeholder, never a real length.
_PLACEHOLDER_MIN = 0x7FFF0000
# Chunks we must hold in memory to parse; a bigger one is not a WAV we can use.
_MAX_FMT_SIZE = 4096


class WavFormatError(ValueError):
    """Not a WAV stream voicepipe can play: not RIFF/WAVE, not 16-bit PCM, or cut short."""


@dataclass(frozen=True)
class WavFormat:
    """What the ``fmt `` chunk says: frames per second, interleaved channels, bits per sample."""

    sample_rate: int
    channels: int
    bits_per_sample: int = 16

    @property
    def frame_size(self) -> int:
        """Bytes per frame (one sample of every channel)."""
        return self.channels * self.bits_per_sample // 8


class _State(Enum):
    RIFF = auto()  # want the 12-byte RIFF/WAVE header
    CHUNK = auto()  # want an 8-byte chunk header
    FMT = auto()  # want the fmt body (+ pad byte)
    SKIP = auto()  # discarding an uninteresting chunk
    DATA = auto()  # PCM
    AFTER_DATA = auto()  # declared data size reached: trailing chunk or a wrong size?
    TRAILER = auto()  # metadata after the data chunk: discard to EOF


def _looks_like_chunk_id(tag: bytes) -> bool:
    # Letters, digits and spaces only (LIST, id3 , cue , bext): PCM rarely looks like that.
    return len(tag) == 4 and tag.replace(b" ", b"").isalnum()


class WavStreamParser:
    """Feed WAV bytes as they arrive; get back whole frames of 16-bit PCM.

    Size fields are trusted only when they are plausible: a placeholder data size means
    "PCM until EOF". A real size is honoured, and anything after it that looks like a chunk
    (``LIST``, ``id3 ``) is dropped; if it does not look like one, the size was wrong and
    the bytes are PCM after all.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._state = _State.RIFF
        self._want = 12
        self._skip = 0
        self._data_left: int | None = None  # None: PCM until EOF
        self._pad = 0
        self._partial = b""
        self._format: WavFormat | None = None
        self._received = 0

    @property
    def format(self) -> WavFormat | None:
        """The stream's format, once the ``fmt `` chunk has been read."""
        return self._format

    @property
    def in_data(self) -> bool:
        """True once the ``data`` header has been read (PCM may follow)."""
        return self._state in (_State.DATA, _State.AFTER_DATA, _State.TRAILER)

    def feed(self, data: bytes) -> bytes:
        """Consume ``data``; return the PCM it completes, a whole number of frames (maybe empty)."""
        self._received += len(data)
        self._buffer += data
        pcm = bytearray()
        while True:
            state = self._state
            if state is _State.DATA:
                pcm += self._take_data()
                if self._state is _State.DATA:
                    break
                continue
            if state is _State.TRAILER:
                self._buffer.clear()
                break
            if state is _State.SKIP:
                n = min(self._skip, len(self._buffer))
                del self._buffer[:n]
                self._skip -= n
                if self._skip:
                    break
                self._expect(_State.CHUNK, 8)
                continue
            if len(self._buffer) < self._want:
                break
            head = bytes(self._buffer[: self._want])
            del self._buffer[: self._want]
            if state is _State.RIFF:
                self._read_riff(head)
            elif state is _State.CHUNK:
                self._read_chunk_header(head)
            elif state is _State.FMT:
                self._read_fmt(head)
            elif state is _State.AFTER_DATA:
                if _looks_like_chunk_id(head[self._pad :]):
                    self._state = _State.TRAILER
                else:
                    # The declared size was wrong: these bytes (pad included) are more PCM.
                    self._buffer[:0] = self._partial + head
                    self._data_left = None
                    self._state = _State.DATA
        return bytes(pcm)

    def finish(self) -> None:
        """Call at EOF: raise WavFormatError if the stream ended before its audio began.

        A partial frame left at the end is dropped (it cannot be played).
        """
        if not self.in_data:
            raise WavFormatError(
                f"the WAV stream ended after {self._received} bytes, before its audio data began"
            )
        self._buffer.clear()

    def _expect(self, state: _State, want: int) -> None:
        self._state = state
        self._want = want

    def _take_data(self) -> bytes:
        assert self._format is not None
        frame = self._format.frame_size
        buffer = self._buffer
        if self._data_left is not None and len(buffer) >= self._data_left:
            # The declared end: keep a partial frame aside in case the size proves wrong.
            end = self._data_left
            usable = end - end % frame
            out = bytes(buffer[:usable])
            self._partial = bytes(buffer[usable:end])
            del buffer[:end]
            self._data_left = 0
            self._expect(_State.AFTER_DATA, self._pad + 4)
            return out
        usable = len(buffer) - len(buffer) % frame
        out = bytes(buffer[:usable])
        del buffer[:usable]
        if self._data_left is not None:
            self._data_left -= usable
        return out

    def _read_riff(self, head: bytes) -> None:
        riff, _size, wave = struct.unpack("<4sI4s", head)
        if riff not in (b"RIFF", b"RF64") or wave != b"WAVE":
            raise WavFormatError(
                f"not a WAV stream (it starts with {head[:4]!r}, expected b'RIFF'); "
                "check the response format the server was asked for"
            )
        self._expect(_State.CHUNK, 8)

    def _read_chunk_header(self, head: bytes) -> None:
        tag, size = struct.unpack("<4sI", head)
        pad = size & 1
        if tag == b"fmt ":
            if not 16 <= size <= _MAX_FMT_SIZE:
                raise WavFormatError(f"the WAV fmt chunk has an impossible size ({size} bytes)")
            self._expect(_State.FMT, size + pad)
        elif tag == b"data":
            if self._format is None:
                raise WavFormatError("the WAV stream has audio data before its fmt chunk")
            if size == 0 or size >= _PLACEHOLDER_MIN:
                self._data_left = None
            else:
                self._data_left = size
                self._pad = pad
            self._state = _State.DATA
        else:
            self._skip = size + pad
            self._state = _State.SKIP

    def _read_fmt(self, body: bytes) -> None:
        tag, channels, rate, _byte_rate, _align, bits = struct.unpack("<HHIIHH", body[:16])
        if tag == _EXTENSIBLE and len(body) >= 26:
            (tag,) = struct.unpack("<H", body[24:26])  # first two bytes of the subformat GUID
        if tag != _PCM or bits != 16:
            kind = "PCM" if tag == _PCM else f"format tag 0x{tag:04x}"
            raise WavFormatError(
                f"the WAV stream is {kind} with {bits}-bit samples; voicepipe plays 16-bit PCM "
                "only: ask the server for 16-bit PCM (or use response format 'pcm')"
            )
        if channels < 1 or rate < 1:
            raise WavFormatError(f"the WAV fmt chunk is invalid ({channels} channels, {rate} Hz)")
        self._format = WavFormat(sample_rate=rate, channels=channels, bits_per_sample=bits)
        self._expect(_State.CHUNK, 8)
