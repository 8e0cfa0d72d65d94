"""How many cores this process may use, and how the embedded models split them.

``os.cpu_count()`` counts the machine; a process pinned by ``taskset``, a container's cpuset or
a scheduler may use fewer. Ray tells each actor its share in ``OMP_NUM_THREADS`` (``num_cpus``
of the actor); honouring it keeps two workers on two cores from running four busy pools.
"""

from __future__ import annotations

import os

__all__ = ["available_cores", "llm_threads", "tts_threads"]


def available_cores() -> int:
    """The cores in the affinity mask, or fewer when ``OMP_NUM_THREADS`` (a plain positive
    number) says so."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        cores = max(1, os.cpu_count() or 1)
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isascii() and omp.isdecimal() and int(omp) > 0:
        return min(int(omp), cores)
    return cores


def tts_threads() -> int:
    """Piper's onnxruntime threads: half the cores (1 on 2), at most 4. On 2 cores 2 threads
    made the first chunk's synthesis while llama.cpp generates slower (p50 192-203 ms against
    121-156 ms); past 4 a voice this small gains nothing measurable (not measured here)."""
    return max(1, min(available_cores() // 2, 4))


def llm_threads() -> int:
    """llama.cpp's threads: the cores Piper does not take, up to 8.

    The first chunk is synthesized while the model goes on writing; the model writes far
    faster than speech, so it is the one that gives way. Measured side by side on 2 cores
    (`scripts/bench_ttfa.py threads --splits 2/0/1/0,1/0/1/0`, README "Measured here"): with
    one thread instead of two, TTFA is about the same on an idle machine (0.98x over six
    prompts) and a third lower with one busy process beside it (0.63x), where two threads
    let OpenMP's spinning workers stall the answer for seconds.
    """
    return max(1, min(available_cores() - tts_threads(), 8))
