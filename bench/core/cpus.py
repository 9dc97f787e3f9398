"""The CPUs this process may use, and the most threads a TensorFlow pool may ask of them (stdlib only)."""

from __future__ import annotations

import math
import os

# The most threads one of TensorFlow's pools (intra-op, inter-op) may be given, per usable
# CPU. TensorFlow's default is one intra-op thread per core and about as many inter-op
# threads; a few times over is an oversubscription worth measuring, but past a few dozen
# threads per CPU the extra threads only wait for one, each holding a stack and a kernel
# task. Far past it TensorFlow does not fail cleanly: --inter-op-threads 99999 on this
# 2-CPU machine (pid_max 32768) hung 5.5 minutes creating threads and died with SIGABRT
# ("env.cc:84] Check failed: ... Thread tf_Compute creation via pthread_create() failed").
# 64 per CPU, 128 here and 8,192 on a 128-CPU server, is well beyond any count worth
# timing and well below the thread limits where pool creation aborts.
THREADS_PER_CPU = 64


def usable_cpus(quota_path: str = "/sys/fs/cgroup/cpu.max") -> int:
    """The CPUs this process may use: its affinity mask, capped by the cgroup's CPU quota
    (a container's ``--cpus``); ``os.cpu_count()`` is the host's count."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    try:
        with open(quota_path) as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return count


def max_threads() -> int:
    """The most threads a TensorFlow pool may be given on this machine (:data:`THREADS_PER_CPU`)."""
    return THREADS_PER_CPU * usable_cpus()
