"""Where audio files go: checks made before any work, and owner-only temporary files.

A bad path, a missing encoder or a bad bitrate fails before the LLM request, with the reason;
a file being written lives under a name nobody can guess until it is complete.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from voicepipe.errors import AudioError, ConfigError


def private_temp(path: Path, suffix: str) -> Path:
    """A new, empty, owner-only file beside ``path`` with a name nobody can guess.

    Made with ``O_CREAT | O_EXCL`` (:func:`tempfile.mkstemp`): a file or symlink someone
    planted under a predictable name can neither be followed nor overwritten.
    """
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=folder)
    except OSError as exc:
        raise AudioError(f"cannot write {path}: {exc.strerror or exc}") from exc
    os.close(fd)
    return Path(name)


def new_file_mode(path: Path) -> int:
    """The mode the finished file gets: the target's if it exists, else what the umask allows
    (the temporary file was owner-only while it was being written)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux says it without changing it (os.umask would, for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def check_encoder(path: Path) -> None:
    """Fail clearly if writing ``path`` needs ffmpeg and it is not on the PATH."""
    if path.suffix.lower() != ".wav" and shutil.which("ffmpeg") is None:
        raise AudioError(
            f"writing {path.suffix} files needs ffmpeg, which is not on the PATH: install it "
            "(apt-get install ffmpeg) or write a .wav file instead"
        )


def check_writable(path: Path) -> None:
    """Fail before any work if ``path`` cannot be created, with the reason."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise AudioError(f"cannot write {path}: folder {parent} does not exist")
    if path.is_dir():
        raise AudioError(f"cannot write {path}: it is a folder")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise AudioError(f"cannot write {path}: permission denied")


LOSSY = (".mp3", ".ogg", ".opus", ".m4a")
_BITRATE = re.compile(r"[1-9][0-9]{0,5}k?")


def check_bitrate(bitrate: str | None, suffix: str) -> str | None:
    """``bitrate`` as ffmpeg takes it (e.g. ``64k``), or a ConfigError that says what fits."""
    if bitrate is None:
        return None
    if suffix.lower() not in LOSSY:
        raise ConfigError(
            f"a bitrate applies to lossy formats ({', '.join(LOSSY)}), not {suffix or 'this file'}"
        )
    value = bitrate.strip().lower()
    if not _BITRATE.fullmatch(value):
        raise ConfigError(f"bad bitrate {bitrate!r}: give bits per second, e.g. 64k or 128000")
    return value
