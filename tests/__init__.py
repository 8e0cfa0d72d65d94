"""voicepipe's tests; the folders mirror the package."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT_DIR = Path(__file__).resolve().parents[1]  # the repository: scripts/, samples/


def run_script(script: str, *args: str, env: dict[str, str], timeout: float = 60) -> Any:
    """Run ``script`` in a fresh interpreter from the repository (its own PortAudio, its own
    event loop), require a clean exit, and return what it printed, parsed as JSON."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def run_soak(*args: str) -> list[int]:
    """Run ``scripts/soak.py --seconds 4`` (and ``args``), require that nothing grew (its exit
    code), and return its counts: turns, completed, interrupted, LLM faults, TTS faults."""
    result = subprocess.run(
        [sys.executable, str(ROOT_DIR / "scripts" / "soak.py"), "--seconds", "4", *args],
        capture_output=True,
        text=True,
        cwd=ROOT_DIR,
        timeout=60,
    )
    print(result.stdout)  # the figures, with -s
    assert result.returncode == 0, result.stdout + result.stderr
    # "97 turns: 53 completed, 20 interrupted, 14 LLM faults, 10 TTS faults"
    return [int(word) for word in result.stdout.splitlines()[0].split() if word.isdigit()]
