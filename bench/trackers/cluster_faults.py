"""Child side: the failures a parameter-server cluster's coordinator hid while a cell trained.

TensorFlow's ``ClusterCoordinator`` tolerates a worker that fails: it logs the failure,
puts the worker's scheduled steps back in its queue for the other workers, and waits (up to
an hour) for the worker to come back; a step whose remote call failed for a moment is put
back too. Training goes on and ends normally, so the cell would be recorded as an ordinary
measurement of N workers while fewer did the work, or while steps were run twice. On a
local cluster the launcher sees a task die (:mod:`distbench.launchers.cluster`); on a real
one only the coordinator's log says so, and nothing else the coordinator offers does.

:func:`listen` listens to TensorFlow's Python logger while the cell trains and evaluates;
:meth:`Faults.check` turns what it heard into a :class:`ClusterFault`, which the worker
records as a failed cell (``error_kind`` ``cluster``): fail closed. The messages matched are
the coordinator's own (``cluster_coordinator.py``, TensorFlow 2.21), by their format string.
"""

from __future__ import annotations

import logging

# The coordinator's messages when a remote step failed and was put back or its worker was
# given up on for now (their format strings, before the arguments are filled in).
FAULTS = (
    "Worker %s failed with",                  # a worker lost: its steps go to the others
    "Remote function on worker %s failed with",   # a step failed for a moment and is run again
    "Parameter server failure detected",
    "Cluster update failed with error",
)
SHOWN = 3   # faults quoted in the reason; the rest are counted


class ClusterFault(RuntimeError):
    """The coordinator recovered from a failure while the cell was timed: not a measurement."""


class Faults(logging.Handler):
    """What the coordinator logged about failed workers and steps, as it logged it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, str) and record.msg.startswith(FAULTS):
            self.seen.append(record.getMessage().splitlines()[0][:300])

    def check(self) -> None:
        """Stops listening; raises :class:`ClusterFault` when anything was heard."""
        logging.getLogger("tensorflow").removeHandler(self)
        if not self.seen:
            return
        more = len(self.seen) - SHOWN
        raise ClusterFault(
            "the parameter-server cluster lost a worker or a step while the cell ran, and TensorFlow's coordinator "
            "ran the lost steps again on the workers left, so these step times are not the whole cluster's: "
            + "; ".join(self.seen[:SHOWN]) + (f"; and {more} more" if more > 0 else ""))


def listen() -> Faults:
    """Listens to TensorFlow's logger (``tensorflow``, where ``tf_logging`` writes) until
    :meth:`Faults.check`; a listener an earlier cell of this process left (it raised before
    its check) is removed."""
    logger = logging.getLogger("tensorflow")
    for stale in [h for h in logger.handlers if isinstance(h, Faults)]:
        logger.removeHandler(stale)
    faults = Faults()
    logger.addHandler(faults)
    return faults
