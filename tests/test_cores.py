"""How many cores the model runtimes size their thread pools for."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from voicepipe.cores import available_cores
from voicepipe.llm.local import default_threads as llama_threads
from voicepipe.tts.piper import default_threads as piper_threads


def test_a_scheduler_s_share_in_omp_num_threads_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Ray gives an actor with num_cpus=1
    assert available_cores() == 1
    assert llama_threads() == 1 and piper_threads() == 1


def test_omp_num_threads_never_adds_cores_the_process_may_not_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "64")
    assert available_cores() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", ["", "0", "-2", "four", "²", "2,1"])
def test_a_meaningless_omp_num_threads_falls_back_to_the_affinity_mask(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert available_cores() == len(os.sched_getaffinity(0))


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
def test_a_process_pinned_to_one_core_sizes_for_one() -> None:
    code = "from voicepipe.cores import available_cores; print(available_cores())"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "1"


@pytest.mark.parametrize(
    ("cores", "llm", "tts"), [(1, 1, 1), (2, 1, 1), (3, 2, 1), (4, 2, 2), (8, 4, 4), (32, 8, 4)]
)
def test_the_models_split_the_cores_so_the_first_chunk_never_waits_for_one(
    monkeypatch: pytest.MonkeyPatch, cores: int, llm: int, tts: int
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", str(cores))
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(64)))
    assert (llama_threads(), piper_threads()) == (llm, tts)
    assert cores == 1 or llm + tts <= cores
