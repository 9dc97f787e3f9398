"""The lockstep wire protocol between the parent's relay and a pair's two workers.

Each worker has two FIFOs, ``<prefix>.go`` (turns in) and ``<prefix>.done`` (out), the
prefix in its environment (:data:`ENV`). A worker writes READY before a timed unit and
waits for GO, writes DONE after it, and END when its training is over; the parent's
:class:`distbench.launchers.relay.Relay` answers; the worker's side is
:mod:`distbench.trackers.lockstep`.
"""

import os

ENV = "DISTBENCH_LOCKSTEP"      # a worker's FIFO prefix: <prefix>.go (turns in), <prefix>.done (out)
READY, GO, DONE, END = b"r", b"g", b"d", b"e"


def prefix(folder: str, name: str) -> str:
    """The FIFO prefix of the worker called ``name`` in a pair's ``folder``."""
    return os.path.join(folder, f"lockstep-{name}")


def not_judged(found: dict) -> dict:
    """A lockstep worker's disturbance record, not judged: its partner steps while it waits
    and counts among the other processes (every process of an ``ab`` or ``check --against``
    read DISTURBED by 27-63% here); the machine's own drift falls on both sides of a pair alike."""
    return {**found, "disturbed": False, "lockstep": "not judged: the partner process counts among the others"}
