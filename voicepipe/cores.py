"""How many cores this process may use, for sizing the model runtimes' thread pools.

``os.cpu_count()`` counts the machine; a process pinned by ``taskset``, a container's cpuset or
a scheduler may use fewer. Ray tells each actor its share in ``OMP_NUM_THREADS`` (``num_cpus``
of the actor); honouring it keeps two workers on two cores from running four busy pools.
"""

from __future__ import annotations

import os

__all__ = ["available_cores"]


def available_cores() -> int:
    """``OMP_NUM_THREADS`` when set to a positive number, else the cores in the affinity mask."""
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        return int(omp)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)
