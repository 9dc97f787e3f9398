"""Child side: the failures a parameter-server cluster's coordinator hid while a cell trained.

TensorFlow's ``ClusterCoordinator`` tolerates a worker that fails: it logs the failure,
puts the worker's scheduled steps back in its queue for the other workers, and waits (up to
an hour) for the worker to come back; a step whose remote call failed for a moment is put
back too. Training goes on and ends normally, so the cell would be recorded as an ordinary
measurement of N workers while fewer did the work, or while steps were run twice. On a
local cluster the launcher sees a task die (:mod:`distbench.launchers.cluster`); on a real
one only the coordinator's log says so, and nothing else the coordinator offers does.

:func:`listen` listens to TensorFlow's Python logger while the cell trains and evaluates;
:meth:`Faults.check_heard`, at each step's end, and :meth:`Faults.check`, at the cell's, turn
what it heard into a :class:`ClusterFault`, which the worker records as a failed cell
(``error_kind`` ``cluster``): fail closed, at the step after the fault. The messages matched are
the coordinator's own (``cluster_coordinator.py``, TensorFlow 2.21), by their format string.
"""

from __future__ import annotations

import logging

# The coordinator's messages when a remote step failed and was put back or its worker was
# given up on for now (their format strings, before the arguments are filled in). Some are
# logged at INFO (with TF_PSS_ENABLE_COORDINATION_SERVICE set, a lost worker is only that).
FAULTS = (
    "Worker %s failed with",                  # a worker lost: its steps go to the others
    "[Worker %d] Putting back a closure after it failed",
    "[Worker %d] Clearing tagged queue after resource closure failure",
    "Worker %s has been recovered",
    "Remote function on worker %s failed with",   # a step failed for a moment and is run again
    "Parameter server failure detected",
    "Cluster update failed with error",
)
SHOWN = 3   # faults quoted in the reason; the rest are counted


class ClusterFault(RuntimeError):
    """The coordinator recovered from a failure while the cell was timed: not a measurement."""


class Faults(logging.Filter):
    """What the coordinator logged about failed workers and steps, as it logged it.

    A filter on TensorFlow's logger, which it opens to INFO while it listens (a user's
    ``tf.get_logger().setLevel(...)`` or a ``dictConfig`` that disabled it would hide the
    faults): every record passes through it, and only those the logger showed before go on
    to its handlers, so TensorFlow's own lines are as they were. A process-wide
    ``logging.disable(...)`` is lowered below INFO while it listens too (other loggers'
    records it hid then reach the worker's log, never the user's terminal)."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self.seen: list[str] = []
        self._logger = logger
        self._kept = (logger.level, logger.disabled, logging.root.manager.disable)
        self._shown = logging.CRITICAL + 1 if logger.disabled else max(logger.getEffectiveLevel(),
                                                                      logging.root.manager.disable + 1)
        logger.setLevel(logging.INFO)
        if logging.root.manager.disable >= logging.INFO:
            logging.disable(logging.DEBUG)
        logger.disabled = False
        logger.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(FAULTS):
            self.seen.append(record.getMessage().splitlines()[0][:300])
        return record.levelno >= self._shown

    def stop(self) -> None:
        """TensorFlow's logger as it was before :func:`listen`."""
        self._logger.removeFilter(self)
        self._logger.setLevel(self._kept[0])
        self._logger.disabled = self._kept[1]
        if logging.root.manager.disable != self._kept[2]:
            logging.disable(self._kept[2])

    def check_heard(self, clock) -> None:
        """:meth:`check` once anything was heard, else nothing: called as each step of
        ``clock`` ends (``StepClock.checks``), it fails the cell at the step after the fault,
        where the workers left would run the lost one's steps on to the end."""
        if self.seen:
            self.check(clock.total_steps)

    def check(self, steps: int | None = None) -> None:
        """Stops listening; raises :class:`ClusterFault` when anything was heard."""
        self.stop()
        if not self.seen:
            return
        more = len(self.seen) - SHOWN
        stopped = f" (the cell stopped after step {steps}, when it was heard)" if steps is not None else ""
        raise ClusterFault(
            "the parameter-server cluster lost a worker or a step while the cell ran, and TensorFlow's coordinator "
            "ran the lost steps again on the workers left, so these step times are not the whole cluster's: "
            + "; ".join(self.seen[:SHOWN]) + (f"; and {more} more" if more > 0 else "") + stopped)


def listen() -> Faults:
    """Listens to TensorFlow's logger (``tensorflow``, where ``tf_logging`` writes) until
    :meth:`Faults.check`; a listener an earlier cell of this process left (it raised before
    its check) is stopped first."""
    logger = logging.getLogger("tensorflow")
    for stale in [f for f in logger.filters if isinstance(f, Faults)]:
        stale.stop()
    return Faults(logger)
