from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

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
