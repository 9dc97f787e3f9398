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
