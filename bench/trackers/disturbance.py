"""Child side: what disturbed a process while it was timed, from ``/proc/stat`` and psutil.

A cell's step time moves with what else the machine does. So each worker samples the
machine's CPU accounting when timing starts and stops, and the record says:

* ``others_cpu``: CPU time used by every other process (and the kernel for them) on the
  cores this process may run on (its affinity), as a share of their capacity over the
  window (cores x seconds);
* ``steal``: the share the hypervisor gave to other guests (``steal`` in /proc/stat);
* ``load_1m``: the 1-minute load average at the end.

A process is *disturbed* when others used more than ``OTHERS_LIMIT`` of the machine or
the hypervisor stole more than ``STEAL_LIMIT``; the table marks such cells (not local
multi-worker cells, whose own other workers count as "others" here, nor lockstep workers,
whose partner does: :func:`distbench.trackers.lockstep.disturbance`). On systems without
``/proc/stat`` nothing is recorded (never a guess).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

OTHERS_LIMIT = 0.20
STEAL_LIMIT = 0.05
_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True)
class Snapshot:
    """The CPU accounting of the cores this process may run on (seconds) and this process
    tree's CPU time."""

    wall: float
    busy: float       # user + nice + system + irq + softirq, over those cores
    steal: float
    own: float        # this process and its children: user + system

    @classmethod
    def take(cls, cpus: set[int] | None = None, stat: str = "/proc/stat") -> "Snapshot | None":
        """Now; over the cores ``cpus`` (its affinity), else all of them. Counted over every
        core, a process held to one of two read the other core's work as its disturbance:
        others' CPU of 135-165% of its capacity."""
        try:
            with open(stat) as f:
                lines = [line.split() for line in f if line.startswith("cpu")]
            rows = [row for row in lines[1:] if int(row[0][3:]) in cpus] if cpus else lines[:1]
            values = [sum(int(row[k]) for row in rows) for k in range(1, len(_FIELDS) + 1)]
        except (OSError, ValueError, IndexError):
            return None
        if not rows:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = dict(zip(_FIELDS, (v / ticks for v in values)))
        t = os.times()
        return cls(time.monotonic(), cpu["user"] + cpu["nice"] + cpu["system"] + cpu["irq"] + cpu["softirq"],
                   cpu["steal"], t.user + t.system + t.children_user + t.children_system)


def between(start: Snapshot, end: Snapshot, cores: int) -> dict:
    """The window's disturbance (pure): shares of ``cores`` x elapsed seconds."""
    capacity = max(1e-9, (end.wall - start.wall) * cores)
    others = max(0.0, (end.busy - start.busy) - (end.own - start.own)) / capacity
    steal = max(0.0, end.steal - start.steal) / capacity
    return {"seconds": end.wall - start.wall, "cores": cores, "others_cpu": others, "steal": steal,
            "disturbed": others > OTHERS_LIMIT or steal > STEAL_LIMIT}


class Meter:
    """Measures the disturbance of one timed window in this process."""

    def __init__(self) -> None:
        self._cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        self._start = Snapshot.take(self._cpus)

    def stop(self) -> dict | None:
        end = Snapshot.take(self._cpus)
        if self._start is None or end is None:
            return None
        cores = len(self._cpus) if self._cpus else (os.cpu_count() or 1)
        found = between(self._start, end, cores)
        found["load_1m"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        return found
