"""Prompt files: one prompt a line, for batch synthesis and benchmarks alike."""

from __future__ import annotations

from pathlib import Path

from voicepipe.errors import ConfigError

__all__ = ["read_prompts"]


def read_prompts(path: str | Path) -> list[str]:
    """Prompts from a file, one a line; blank lines and lines starting with ``#`` are skipped."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"prompts file {p} not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"prompts file {p} is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read prompts file {p}: {exc.strerror or exc}") from exc
    prompts = [line.strip() for line in lines]
    prompts = [line for line in prompts if line and not line.startswith("#")]
    if not prompts:
        raise ConfigError(f"prompts file {p} has no prompts (one per line)")
    return prompts
