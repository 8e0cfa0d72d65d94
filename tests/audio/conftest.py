from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

import numpy as np
import pytest

ASOUNDRC = """pcm.!default {{
  type plug
  slave {{
    pcm {{ type file; slave.pcm "null"; file "{capture}"; format "raw" }}
    format S16_LE
    rate {rate}
    channels 1
  }}
}}
"""


def alsa_capture_env(tmp_path: Path, rate: int = 22050) -> tuple[dict[str, str], Path]:
    """An environment whose default ALSA device writes what is played to a raw file.

    PortAudio reads ALSA's config from $HOME/.asoundrc, so tests run playback in a
    subprocess with HOME pointing here. The `null` slave does not pace playback in real time.
    """
    if ctypes.util.find_library("portaudio") is None:
        pytest.skip("libportaudio2 is not installed (scripts/test installs it)")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    capture = tmp_path / "played.raw"
    (home / ".asoundrc").write_text(ASOUNDRC.format(capture=capture, rate=rate))
    env = {**os.environ, "HOME": str(home)}
    return env, capture


INPUT_ONLY_ALSA_CONF = """pcm.!default {
  type asym
  capture.pcm {
    type plug
    slave {
      pcm { type file; slave.pcm { type null }; file "/dev/null"; infile "/dev/zero"; format "raw" }
      format S16_LE
      rate 16000
      channels 1
    }
  }
}
"""


def alsa_without_output_env(tmp_path: Path) -> dict[str, str]:
    """An environment in which PortAudio finds a microphone and no speaker at all.

    ALSA_CONFIG_PATH replaces ALSA's whole configuration (the system's and ~/.asoundrc), so
    even a machine with a sound card has just one PCM here, "default", which only captures.
    """
    if ctypes.util.find_library("portaudio") is None:
        pytest.skip("libportaudio2 is not installed (scripts/test installs it)")
    conf = tmp_path / "input-only.conf"
    conf.write_text(INPUT_ONLY_ALSA_CONF)
    return {**os.environ, "ALSA_CONFIG_PATH": str(conf)}


PACED_RATE = 48000
_PACED_BYTES_PER_FRAME = 8  # S32_LE stereo: a 4 KiB pipe holds 2.7 ms, like a device buffer

PACED_ASOUNDRC = """pcm.!default {{
  type plug
  slave {{
    pcm {{ type file; slave.pcm "null"; file "{fifo}"; format "raw" }}
    format S32_LE
    rate {rate}
    channels 2
  }}
}}
"""


class PacedDevice:
    """A default ALSA device that plays in real time: the `file` plugin writes into a FIFO
    that a reader thread drains at the sample rate, so PortAudio's writes block as on a card.

    ``blocks`` holds ``(wall_time, samples)``: when each block was consumed, and its left
    channel scaled to int16. The reader holds the FIFO open for writing too, so it never
    sees end-of-file and the pipe (shrunk to 4 KiB, ~2.7 ms) outlives each device opening.
    """

    def __init__(self, tmp_path: Path) -> None:
        import fcntl
        import threading

        if ctypes.util.find_library("portaudio") is None:
            pytest.skip("libportaudio2 is not installed (scripts/test installs it)")
        home = tmp_path / "paced-home"
        home.mkdir(exist_ok=True)
        self.fifo = tmp_path / "device.fifo"
        os.mkfifo(self.fifo)
        (home / ".asoundrc").write_text(PACED_ASOUNDRC.format(fifo=self.fifo, rate=PACED_RATE))
        self.env = {**os.environ, "HOME": str(home)}
        self.blocks: list[tuple[float, np.ndarray]] = []
        self._fd = os.open(self.fifo, os.O_RDWR)
        fcntl.fcntl(self._fd, 1031, 4096)  # F_SETPIPE_SZ
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        import select
        import time

        rate_bytes = PACED_RATE * _PACED_BYTES_PER_FRAME
        start, got, pending = time.perf_counter(), 0, b""
        while not self._stop:
            if not select.select([self._fd], [], [], 0.05)[0]:
                continue
            now = time.perf_counter()
            if got / rate_bytes < now - start - 0.05:  # idle for a while: a new start
                start, got = now, 0
            data = pending + os.read(self._fd, 1024)
            got += len(data) - len(pending)
            whole = len(data) // _PACED_BYTES_PER_FRAME * _PACED_BYTES_PER_FRAME
            data, pending = data[:whole], data[whole:]
            left = np.frombuffer(data, "<i4")[::2] >> 16
            self.blocks.append((time.time(), left.astype(np.int16)))
            ahead = got / rate_bytes - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)

    def played(self) -> tuple[np.ndarray, np.ndarray]:
        """(wall time at which each frame was consumed, the frames)."""
        if not self.blocks:
            return np.zeros(0), np.zeros(0, np.int16)
        times = np.concatenate([np.full(len(b), t) for t, b in self.blocks])
        return times, np.concatenate([b for _, b in self.blocks])

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=5)
        os.close(self._fd)
