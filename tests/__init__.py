"""voicepipe's tests; the folders mirror the package."""

from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parents[1]  # the repository: scripts/, samples/
