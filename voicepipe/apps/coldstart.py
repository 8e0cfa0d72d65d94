"""Cold starts: a fresh ``voicepipe bench`` process from spawn to first audio (`bench --cold`).

The latency a user feels on first use: interpreter start, imports and model loading, then the
first answer. The child reports the wall-clock time of its LLM request and its TTFA; the
parent knows when it spawned the child, so the difference is the loading.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import anyio

from voicepipe.apps.bench import BenchConfig
from voicepipe.errors import ProviderError

__all__ = ["ColdRun", "cold_start"]


@dataclass(frozen=True)
class ColdRun:
    """A fresh process from start to first audio: the latency a user feels on first use."""

    process_to_first_audio_ms: float  # process spawned -> first audio at the sink
    load_ms: float  # process spawned -> LLM request sent (interpreter, imports, model loading)
    ttfa_ms: float  # LLM request -> first audio, as in a warm run

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _cold_command(config: BenchConfig, prompt: str, out: Path) -> list[str]:
    command = [sys.executable, "-m", "voicepipe", "bench", prompt, "-n", "1", "--warmup", "0"]
    command += ["--no-trace", "--json", str(out), "--llm", config.llm, "--tts", config.tts]
    command += ["--chunking", config.chunking]
    for option, value in (
        ("--llm-url", config.llm_url),
        ("--tts-url", config.tts_url),
        ("--system", config.system),
        ("--max-tokens", config.max_tokens),
        ("--seed", config.seed),
        ("--temperature", config.temperature),
        ("--tts-speed", config.tts_speed),
        ("--tts-format", config.tts_format),
        ("--tts-instructions", config.tts_instructions),
        ("--llm-key-env", config.llm_key_env),
        ("--tts-key-env", config.tts_key_env),
    ):
        if value is not None:
            command += [option, str(value)]
    return command


async def cold_start(config: BenchConfig, prompt: str, n: int = 1) -> list[ColdRun]:
    """Start ``n`` fresh ``voicepipe bench`` processes, one at a time, and time each.

    The child reports the wall-clock time of its LLM request and its TTFA; the parent knows
    when it spawned the child, so the difference includes interpreter start and model loading.
    """
    runs: list[ColdRun] = []
    with tempfile.TemporaryDirectory(prefix="voicepipe-cold-") as tmp:
        for i in range(n):
            out = Path(tmp) / f"cold-{i}.json"
            command = _cold_command(config, prompt, out)
            spawned = time.time()
            result = await anyio.run_process(command, check=False, env=dict(os.environ))
            if result.returncode != 0:
                tail = result.stderr.decode(errors="replace").strip().splitlines()[-1:]
                raise ProviderError(
                    f"cold-start run exited with {result.returncode}: "
                    + (tail[0] if tail else "no message")
                )
            report = json.loads(await anyio.Path(out).read_text())
            first = report["runs"][0]
            if first["ttfa_ms"] is None:
                raise ProviderError("cold-start run produced no audio")
            load_ms = (first["started_unix"] - spawned) * 1000.0
            runs.append(ColdRun(load_ms + first["ttfa_ms"], load_ms, first["ttfa_ms"]))
    return runs
