"""Voice input: the utterance detector, the transcription client, and `chat --listen` end to end."""

from __future__ import annotations

import codecs
import ctypes.util
import fcntl
import io
import os
import queue
import select
import shutil
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import ROOT_DIR
from tests.servers import serve
from tests.servers.stt import FakeTranscriber
from tests.voice.speech import piper_says
from voicepipe.errors import ProviderError
from voicepipe.voice.listener import Listener
from voicepipe.voice.microphone import Microphone
from voicepipe.voice.stt import OpenAITranscriber, wav_bytes
from voicepipe.voice.vad import UtteranceDetector, VoiceActivity, level_dbfs

RATE = 16000
REPO = ROOT_DIR
LISTEN = [sys.executable, "-m", "voicepipe", "chat", "--listen", "--llm", "text", "--tts", "espeak"]


def loud(speech: npt.NDArray[np.int16], gain: float = 2.0) -> npt.NDArray[np.int16]:
    """Speech raised by ``gain``, clipped: a user speaking up over the assistant."""
    return np.clip(speech.astype(np.int32) * gain, -32768, 32767).astype(np.int16)


def silence(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(round(RATE * seconds), np.int16)


def tone(seconds: float, amplitude: float = 8000, freq: float = 300) -> npt.NDArray[np.int16]:
    t = np.arange(round(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * freq * t) * amplitude).astype(np.int16)


def syllables(seconds: float) -> npt.NDArray[np.int16]:
    """Speech-like bursts: 150 ms of tone, 50 ms gap, the pitch changing each time."""
    parts = [
        np.concatenate([tone(0.15, freq=200 + 40 * (i % 5)), silence(0.05)])
        for i in range(round(seconds / 0.2))
    ]
    return np.concatenate(parts)


def detect(signal: npt.NDArray[np.int16], vad: VoiceActivity | None = None) -> list[float]:
    detector = UtteranceDetector(RATE, vad)
    return [len(u) / RATE for u in detector.feed(signal) + detector.flush()]


# Utterance = 200 ms kept from before the start (100 ms pre-roll + the 100 ms start) + the
# speech + 200 ms of the closing silence.
@pytest.mark.parametrize(
    ("signal", "expected"),
    [
        (silence(3), []),
        (np.concatenate([silence(1), tone(1), silence(1)]), [1.4]),
        (np.concatenate([silence(1), tone(0.06), silence(1)]), []),  # a click: too short
        # a 300 ms pause is inside one utterance; a 1 s pause separates two
        (np.concatenate([silence(1), tone(0.5), silence(0.3), tone(0.5), silence(1)]), [1.7]),
        (np.concatenate([silence(1), tone(0.5), silence(1), tone(0.8), silence(1)]), [0.9, 1.2]),
        (np.concatenate([silence(1), syllables(1.2), silence(1)]), [1.55]),  # ends in a gap
        # still speaking at the end of input: flush() returns it, without a tail
        (np.concatenate([silence(1), tone(1)]), [1.2]),
        (np.concatenate([silence(1), tone(0.5, amplitude=20), silence(1)]), []),  # -64 dBFS
    ],
    ids=["silence", "one", "click", "short-pause", "two", "syllables", "unfinished", "quiet"],
)
def test_detector_finds_utterances(signal: npt.NDArray[np.int16], expected: list[float]) -> None:
    assert detect(signal) == pytest.approx(expected, abs=0.021)


def test_detector_follows_the_noise_floor() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 300, RATE * 6).astype(np.int16)  # about -41 dBFS, above min_dbfs
    assert detect(noise) == []
    speech = np.concatenate([silence(2), tone(1), silence(3)])
    assert detect(noise + speech) == pytest.approx([1.4], abs=0.021)
    detector = UtteranceDetector(RATE)
    detector.feed(noise)
    assert -44 < detector.noise_floor_dbfs < -38
    # the same tone barely above that noise is not speech
    assert detect(noise + np.concatenate([silence(2), tone(1, amplitude=400), silence(3)])) == []


def test_detector_cuts_an_endless_utterance_and_hears_a_steady_sound_as_noise() -> None:
    vad = VoiceActivity(max_ms=2000)
    talk = np.concatenate([silence(1), syllables(5), silence(1)])
    # cut at max_ms, nothing lost between the pieces: 0.2 + 4.95 + 0.2 s in all
    assert detect(talk, vad) == pytest.approx([2.0, 2.0, 1.36], abs=0.021)
    # a steady tone has no pauses: after floor_window_ms (3 s) it is the noise floor
    hum = np.concatenate([silence(1), tone(5), silence(1)])
    assert detect(hum) == pytest.approx([0.2 + 3.0 + 0.2], abs=0.021)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 5000), min_size=1, max_size=40))
def test_detector_output_does_not_depend_on_how_input_is_cut(cuts: list[int]) -> None:
    signal = np.concatenate([silence(0.5), syllables(0.6), silence(0.8), tone(0.4), silence(1)])
    whole = UtteranceDetector(RATE)
    expected = whole.feed(signal) + whole.flush()
    detector = UtteranceDetector(RATE)
    got, start = [], 0
    for cut in cuts * (len(signal) // sum(cuts) + 1):
        got += detector.feed(signal[start : start + cut])
        start += cut
        if start >= len(signal):
            break
    got += detector.flush()
    assert len(got) == len(expected) == 2
    for a, b in zip(got, expected, strict=True):
        assert np.array_equal(a, b)


def talk_over(
    echo: npt.NDArray[np.int16],
    user: npt.NDArray[np.int16],
    at: float,
    vad: VoiceActivity | None = None,
) -> list[float]:
    """The utterances found while the assistant's ``echo`` plays, ``user`` added at ``at`` s."""
    mixed = echo.astype(np.int32)
    start = round(at * RATE)
    mixed[start : start + len(user)] += user
    detector = UtteranceDetector(RATE, vad)
    out = detector.feed(silence(1))
    detector.begin_echo()
    out += detector.feed(np.clip(mixed, -32768, 32767).astype(np.int16))
    if vad is None and at >= 0.8 and echo.any():  # the user began after the echo was measured
        assert detector.echo_dbfs == pytest.approx(level_dbfs(tone(0.02, 2000)), abs=0.5)
    detector.end_echo()
    return [len(u) / RATE for u in out + detector.feed(silence(1)) + detector.flush()]


ECHO = syllables(4) // 4  # the assistant's voice at the microphone: about -27 dBFS


# Over the echo an utterance keeps 300 ms from before its start (the 200 ms onset and 100 ms
# before), the speech, and 200 ms of what follows (the echo, now below the raised threshold).
@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (silence(0.6), []),  # the echo alone
        (tone(0.6, amplitude=16000), [0.9]),  # 18 dB above the echo: the user talks over it
        # 18 dB above it, but in 150 ms bursts: none lasts the 200 ms onset
        (syllables(1.0) * 2, []),
        (tone(0.6, amplitude=5000), []),  # 8 dB above: could be the assistant's louder words
        (tone(0.15, amplitude=16000), []),  # loud but short (a knock): under the 200 ms onset
    ],
    ids=["echo", "loud", "short-syllables", "not-loud-enough", "short"],
)
def test_detector_hears_a_user_over_the_assistants_echo(
    user: npt.NDArray[np.int16], expected: list[float]
) -> None:
    assert talk_over(ECHO, user, at=1.0) == pytest.approx(expected, abs=0.021)


def test_the_echo_threshold_is_what_keeps_the_assistant_from_interrupting() -> None:
    # Without begin_echo the same echo is speech, and so is the short knock.
    assert detect(np.concatenate([silence(1), ECHO, silence(1)])) != []
    assert detect(np.concatenate([silence(1), tone(0.15, amplitude=16000), silence(1)])) != []
    # A smaller margin lets the 8 dB louder tone through; a larger one stops the 18 dB one.
    quieter, louder = tone(0.6, amplitude=5000), tone(0.6, amplitude=16000)
    assert talk_over(ECHO, quieter, 1.0, VoiceActivity(echo_margin_db=6)) == pytest.approx(
        [0.9], abs=0.021
    )
    assert talk_over(ECHO, louder, 1.0, VoiceActivity(echo_margin_db=24)) == []
    # Nothing starts while the echo is being measured, however loud.
    assert talk_over(ECHO, louder[: RATE // 10], 0.0) == []


def test_the_echo_is_measured_from_when_it_reaches_the_microphone() -> None:
    # The assistant's voice arrives 250 ms after its playback starts (output + input latency).
    late = np.concatenate([silence(0.25), tone(3, amplitude=2000)])
    assert talk_over(late, silence(0.1), at=1.0) == []
    # measured from playback start instead, the 200 ms hear only silence: the voice interrupts
    # (the whole 3 s of it, 100 ms from before and 200 ms after)
    assert talk_over(late, silence(0.1), 1.0, VoiceActivity(echo_wait_ms=0)) == pytest.approx(
        [0.1 + 3.0 + 0.2], abs=0.021
    )
    # with nothing heard (headphones), the usual threshold after echo_wait_ms + echo_measure_ms
    quiet = silence(3)
    assert talk_over(quiet, tone(0.6, amplitude=2000), at=0.6) == []  # taken for the echo
    assert talk_over(quiet, tone(0.6, amplitude=2000), at=1.0) == pytest.approx([0.9], abs=0.021)


def test_level_dbfs() -> None:
    assert level_dbfs(silence(0.02)) == -100
    assert level_dbfs(np.full(320, 32767, np.int16)) == pytest.approx(0, abs=0.01)
    assert level_dbfs(tone(0.02, amplitude=8000)) == pytest.approx(-15.2, abs=0.2)


@pytest.mark.slow
@pytest.mark.anyio
async def test_detector_finds_piper_speech() -> None:
    from voicepipe.audio.resample import resample
    from voicepipe.tts.piper import PiperTTS

    tts = PiperTTS()
    with anyio.fail_after(60):
        chunks = [c async for c in tts.synthesize("Could you turn the kitchen lights on?")]
    speech = resample(np.concatenate([c.samples for c in chunks]), chunks[0].sample_rate, RATE)
    active = np.nonzero(np.abs(speech) > 300)[0]
    spoken = (active[-1] - active[0]) / RATE  # from the first to the last audible sample
    signal = np.concatenate([silence(1.5), speech, silence(1.5)])
    (found,) = detect(signal)
    assert spoken > 1.0  # a sentence of speech, not a blip
    assert spoken - 0.2 < found < spoken + 0.8, (found, spoken)


# --- the transcription client ---


@pytest.fixture
def stt_server() -> Iterator[tuple[FakeTranscriber, str]]:
    app = FakeTranscriber()
    with serve(app) as url:
        yield app, url + "/v1"


@pytest.mark.anyio
async def test_transcribe_uploads_a_wav_with_the_model(
    stt_server: tuple[FakeTranscriber, str],
) -> None:
    app, url = stt_server
    app.text = "  Turn the lights on.\n"
    samples = tone(1.25)
    with anyio.fail_after(10):
        async with OpenAITranscriber("whisper-large-v3", base_url=url, api_key="sk-test") as stt:
            assert await stt.transcribe(samples, RATE) == "Turn the lights on."
    (upload,) = app.requests
    assert upload.path == "/v1/audio/transcriptions"
    assert upload.fields["model"] == "whisper-large-v3"
    assert upload.headers["authorization"] == "Bearer sk-test"
    assert upload.file_type == "audio/wav" and upload.file_name.endswith(".wav")
    assert (upload.sample_rate, upload.channels, upload.seconds) == (RATE, 1, 1.25)
    with wave.open(io.BytesIO(upload.file), "rb") as w:
        assert np.array_equal(np.frombuffer(w.readframes(w.getnframes()), "<i2"), samples)


@pytest.mark.anyio
async def test_transcribe_reports_the_servers_error(
    stt_server: tuple[FakeTranscriber, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, url = stt_server
    app.error_status, app.error_message = 400, "Audio file is too short."
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")  # not for this host: never sent
    with anyio.fail_after(10):
        async with OpenAITranscriber(base_url=url) as stt:
            with pytest.raises(ProviderError) as info:
                await stt.transcribe(tone(0.1), RATE)
    assert info.value.status == 400 and not info.value.retryable
    assert "Audio file is too short." in str(info.value)
    assert "authorization" not in app.requests[0].headers


@pytest.mark.anyio
async def test_transcribe_unreachable_server_is_a_provider_error() -> None:
    with anyio.fail_after(10):
        async with OpenAITranscriber(base_url="http://127.0.0.1:9/v1") as stt:
            with pytest.raises(ProviderError, match="try again"):
                await stt.transcribe(tone(0.1), RATE)


def test_wav_bytes_is_a_wav() -> None:
    with wave.open(io.BytesIO(wav_bytes(tone(0.5), 8000)), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()) == (
            8000,
            1,
            2,
            8000,
        )


# --- `voicepipe chat --listen` through real PortAudio capture ---

CAPTURE_ASOUNDRC = """pcm.!default {{
  type plug
  slave {{
    pcm {{ type file; slave.pcm "null"; file "/dev/null"; infile "{fifo}"; format "raw" }}
    format S16_LE
    rate 16000
    channels 1
  }}
}}
"""
_FEED_BLOCK = 640  # frames per write: the size ALSA's file plugin reads, so no read comes short


class CaptureFeed:
    """The default ALSA device's capture reads a FIFO that this thread fills in real time.

    ALSA's ``null`` slave does not pace capture, so the pace comes from the writer: silence,
    or the samples given to ``say``. A read of the FIFO that finds only part of a block fills
    the rest with stale data, so the writer writes whole 640-frame blocks (what the file
    plugin asks for with the 20 ms blocks voicepipe's Microphone uses).
    """

    def __init__(self, tmp_path: Path) -> None:
        home = tmp_path / "home"
        home.mkdir()
        fifo = tmp_path / "mic.fifo"
        os.mkfifo(fifo)
        (home / ".asoundrc").write_text(CAPTURE_ASOUNDRC.format(fifo=fifo))
        self.env = {**os.environ, "HOME": str(home)}
        # Held open for writing and reading, so the device's open never blocks or sees EOF.
        self._fd = os.open(fifo, os.O_RDWR)
        fcntl.fcntl(self._fd, 1031, 4096)  # F_SETPIPE_SZ: little buffered ahead
        self._speech: queue.SimpleQueue[npt.NDArray[np.int16]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def say(self, samples: npt.NDArray[np.int16]) -> None:
        self._speech.put(samples)

    def _run(self) -> None:
        start, written = time.perf_counter(), 0
        pending = np.zeros(0, np.int16)
        while not self._stop.is_set():
            if not pending.size:
                try:
                    pending = self._speech.get_nowait()
                except queue.Empty:
                    pending = silence(_FEED_BLOCK / RATE)
            block = np.zeros(_FEED_BLOCK, np.int16)
            take = pending[:_FEED_BLOCK]
            block[: len(take)] = take
            pending = pending[_FEED_BLOCK:]
            os.write(self._fd, block.astype("<i2").tobytes())
            written += _FEED_BLOCK
            ahead = written / RATE - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)
            elif ahead < -0.2:  # the reader stalled: do not burst to catch up
                start, written = time.perf_counter(), 0

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():  # with no reader left, a write waits for room: make it
            if select.select([self._fd], [], [], 0.05)[0]:
                os.read(self._fd, 65536)
        os.close(self._fd)


class Lines:
    """A subprocess's output, collected by a thread as it comes; ``wait_for`` a substring."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self.text = ""
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: io.TextIOBase) -> None:
        # Raw reads, not lines: an answer's chunks are shown before its line ends.
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while data := os.read(stream.fileno(), 4096):
            with self._changed:
                self.text += decoder.decode(data)
                self._changed.notify_all()

    def wait_for(self, part: str, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: part in self.text, timeout)


def _need_capture_tools() -> None:
    if ctypes.util.find_library("portaudio") is None:
        pytest.skip("libportaudio2 is not installed (scripts/test installs it)")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/test installs it)")


@contextmanager
def listening_chat(
    tmp_path: Path, app: FakeTranscriber
) -> Iterator[tuple[CaptureFeed, subprocess.Popen[str], Lines, Lines]]:
    """`chat --listen` on a paced FIFO microphone, transcribing with ``app``, ready to hear."""
    _need_capture_tools()
    mic = CaptureFeed(tmp_path)
    try:
        with serve(app) as url:
            chat = subprocess.Popen(
                [*LISTEN, "--stt-url", url + "/v1"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=mic.env,
                cwd=REPO,
            )
            assert chat.stdin is not None and chat.stdout is not None and chat.stderr is not None
            out, errors = Lines(chat.stdout), Lines(chat.stderr)  # type: ignore[arg-type]
            try:
                assert errors.wait_for("ready: speak", 60), errors.text
                yield mic, chat, out, errors
            finally:
                if chat.poll() is None:
                    chat.kill()
                    chat.wait()
    finally:
        mic.close()


def test_chat_listen_transcribes_speech_and_answers(tmp_path: Path) -> None:
    app = FakeTranscriber(text="Please turn on the kitchen lights.")
    utterance = piper_says("Please turn on the kitchen lights.")  # real speech, for silero
    with listening_chat(tmp_path, app) as (mic, chat, out, errors):
        mic.say(np.concatenate([silence(0.5), utterance, silence(1.5)]))
        said = "Please turn on the kitchen lights."
        assert out.wait_for(f"you> {said}\n{said}\n", 30), (out.text, errors.text)
        app.text = said = "And the hallway too."  # a second turn: listening resumed
        mic.say(np.concatenate([silence(0.5), piper_says(said), silence(1.5)]))
        assert out.wait_for(f"you> {said}\n{said}\n", 30), (out.text, errors.text)
        chat.stdin.close()  # Ctrl-D: leave
        assert chat.wait(30) == 0, errors.text
    # One upload per turn: the transcription started at the pause after the speech was the
    # answer (see VoiceInput.next_text), so nothing was sent twice.
    upload, second = app.requests
    first_speech = len(piper_says("Please turn on the kitchen lights.")) / RATE
    second_speech = len(piper_says("And the hallway too.")) / RATE
    # the speech, with up to 300 ms from before it and the 250 ms pause after it
    assert first_speech + 0.1 <= upload.seconds <= first_speech + 0.6, upload.seconds
    assert second_speech + 0.1 <= second.seconds <= second_speech + 0.6, second.seconds
    assert upload.fields["model"] == "whisper-1"
    assert (upload.sample_rate, upload.channels) == (RATE, 1)
    with wave.open(io.BytesIO(upload.file), "rb") as w:
        heard = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert level_dbfs(heard) > -35  # the speech, not silence or noise


LONG_ANSWER = " ".join(
    f"This is sentence number {n} of a long answer that takes a while to say." for n in range(1, 16)
)


def test_chat_listen_speaking_over_the_answer_interrupts_it_and_is_answered(
    tmp_path: Path,
) -> None:
    app = FakeTranscriber(text=LONG_ANSWER)  # `--llm text` says it back: a long answer
    with listening_chat(tmp_path, app) as (mic, chat, out, errors):
        mic.say(np.concatenate([silence(0.5), piper_says("Tell me more."), silence(1.5)]))
        # the answer has started to play (its first chunk is shown as its audio starts)
        assert out.wait_for(f"{LONG_ANSWER}\nThis is", 30), (out.text, errors.text)
        app.text = said = "Stop, that is enough."
        # 1 s on: the echo (here silence) has been waited for and measured, 700 ms
        mic.say(np.concatenate([silence(1), loud(piper_says(said)), silence(1.5)]))
        assert out.wait_for(f" [interrupted]\nyou> {said}\n{said}\n", 30), (
            out.text,
            errors.text,
        )
        chat.stdin.close()
        assert chat.wait(30) == 0, errors.text
    barge_in = app.requests[-1]  # earlier ones: the first turn (and any guess it dropped)
    assert "sentence number 15" not in out.text.split(LONG_ANSWER, 1)[1]  # it was cut short
    # the interruption, from just before it began to the pause after it
    spoken = len(piper_says(said)) / RATE
    assert spoken - 0.1 <= barge_in.seconds <= spoken + 0.6, barge_in.seconds  # soft edges
    with wave.open(io.BytesIO(barge_in.file), "rb") as w:
        heard = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert level_dbfs(heard) > -25  # the loud voice, not silence


def test_chat_listen_without_a_microphone(tmp_path: Path) -> None:
    result = subprocess.run(
        [*LISTEN, "--stt-url", "http://127.0.0.1:9"],
        input="",
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},  # no .asoundrc: no devices at all
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode != 0
    assert "no microphone found; chat without --listen and type" in result.stderr


def capture(mic: Microphone, signal: npt.NDArray[np.int16]) -> None:
    """Hand ``signal`` to the microphone's PortAudio callback, 20 ms at a time."""
    block = RATE // 50
    for start in range(0, len(signal), block):
        piece = signal[start : start + block].reshape(-1, 1)
        mic._capture(piece, len(piece), None, None)


@pytest.mark.anyio
async def test_listener_ignores_speech_while_paused() -> None:
    mic = Microphone()  # never opened: the test plays PortAudio's part
    listener = Listener(mic)
    speech = np.concatenate([silence(0.5), tone(0.8), silence(1)])
    listener.pause()
    capture(mic, speech)  # the assistant's own voice, while it speaks
    listener.resume()
    capture(mic, np.concatenate([silence(0.5), tone(0.4, freq=500), silence(1)]))
    with anyio.fail_after(5):
        heard = await listener.next_utterance()
    assert len(heard) / RATE == pytest.approx(0.8, abs=0.021)  # the 0.4 s tone, not the 0.8 s
    assert mic.dropped_blocks == 0


@pytest.mark.anyio
async def test_listener_hears_speech_over_the_assistant_and_keeps_the_utterance() -> None:
    mic = Microphone()
    listener = Listener(mic)
    capture(mic, tone(1))  # before the answer: dropped
    listener.hear_echo()
    capture(mic, silence(0.3))  # the answer is being written: no audio yet
    listener.playback_started()
    burst = tone(0.8, amplitude=16000, freq=500)
    capture(mic, np.concatenate([ECHO[:RATE], burst[: RATE // 2]]))
    with anyio.fail_after(5):
        await listener.wait_for_speech()  # returns at the onset: the turn is interrupted
    assert listener.detector.in_utterance
    assert len(mic._blocks) == 15  # 200 ms into the burst: the rest of it is still to read
    listener.playback_ended(holdoff_s=0.3)  # the utterance under way is kept
    capture(mic, np.concatenate([burst[RATE // 2 :], silence(1)]))
    with anyio.fail_after(5):
        heard = await listener.next_utterance()
    # 100 ms of the echo before the burst, the burst, 200 ms of silence
    assert len(heard) / RATE == pytest.approx(1.1, abs=0.021)
    assert level_dbfs(heard[: RATE // 10]) == pytest.approx(level_dbfs(ECHO[:RATE]), abs=3)
    # an answer that ends with nobody speaking: the usual hold-off and threshold
    listener.hear_echo()
    listener.playback_started()
    capture(mic, ECHO[: RATE // 2])
    listener.playback_ended(holdoff_s=0.2)
    assert not listener.detector.hearing_echo and not mic._blocks
    capture(mic, np.concatenate([tone(0.2), silence(0.5), tone(0.4), silence(1)]))
    with anyio.fail_after(5):
        heard = await listener.next_utterance()
    assert len(heard) / RATE == pytest.approx(0.8, abs=0.021)


@pytest.mark.anyio
async def test_listener_holdoff_and_overflow() -> None:
    small = Microphone(max_buffer_s=1.0)
    capture(small, np.concatenate([tone(0.5), silence(2)]))  # 2.5 s into a 1 s buffer
    assert small.dropped_blocks == 75
    mic = Microphone()
    listener = Listener(mic)
    capture(mic, tone(1))
    listener.resume(holdoff_s=0.2)  # drops what was buffered; ignores the next 0.2 s
    # an echo of the answer's end within the hold-off, then the user speaks
    capture(mic, np.concatenate([tone(0.15), silence(0.05), silence(0.5), tone(0.5), silence(1)]))
    with anyio.fail_after(5):
        heard = await listener.next_utterance()
    assert len(heard) / RATE == pytest.approx(0.9, abs=0.021)
    assert level_dbfs(heard[: RATE // 5]) == -100  # begins with the pre-roll of silence
