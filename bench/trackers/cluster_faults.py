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
(``error_kind`` ``cluster``): fail closed, at the step after the fault. When no step ends within
:data:`STALL_S` of it (every worker lost: the coordinator waits for one to come back), the
worker gives the cell up from the listener's thread (:func:`give_up_with`). The messages matched are
the coordinator's own (``cluster_coordinator.py``, TensorFlow 2.21), by their format string.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

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
LOST = "the parameter-server cluster lost a worker or a step while the cell ran"
STALL_S = 10.0   # after a fault, how long the next step may take to end before the cell is given up

_give_up: list[Callable[[str], None]] = []   # writes the cell's failed record and ends its process (the worker's)


def give_up_with(handler: Callable[[str], None]) -> None:
    """What a listener calls when no step ended within :data:`STALL_S` of a fault: the
    worker's entry point writes its failed record with the reason and exits, since its main
    thread waits inside TensorFlow for steps that no worker is left to run."""
    _give_up[:] = [handler]


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
        self._ended = threading.Event()
        self._watching = threading.Lock()   # taken by the first fault's watcher (two threads may log at once)
        self._longest_unit_s = 0.0          # the longest timed unit so far: a fault gives the next one 3x that
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
            if _give_up and self._watching.acquire(blocking=False):
                threading.Thread(target=self._watch, name="distbench-faults", daemon=True).start()
        return record.levelno >= self._shown

    def _watch(self) -> None:
        """Gives the cell up when, :data:`STALL_S` after the first fault, neither a step
        (:meth:`check_heard`) nor the cell (:meth:`check`) has ended: the cluster lost every
        worker, and the coordinator would wait for one to come back until the cell's deadline."""
        wait = max(STALL_S, 3 * self._longest_unit_s)   # fit's unit under parameter servers is an epoch
        if not self._ended.wait(wait):
            _give_up[0](f"{LOST}, and no step ended in the {wait:g} s after it was heard (the cluster may "
                        f"have lost every worker): {self.heard()}")

    def stop(self) -> None:
        """TensorFlow's logger as it was before :func:`listen`."""
        self._ended.set()
        self._logger.removeFilter(self)
        self._logger.setLevel(self._kept[0])
        self._logger.disabled = self._kept[1]
        if logging.root.manager.disable != self._kept[2]:
            logging.disable(self._kept[2])

    def check_heard(self, clock) -> None:
        """:meth:`check` once anything was heard, else nothing: called as each step of
        ``clock`` ends (``StepClock.checks``), it fails the cell at the step after the fault,
        where the workers left would run the lost one's steps on to the end."""
        if clock.durations:
            self._longest_unit_s = max(self._longest_unit_s, clock.durations[-1] * clock.steps[-1])
        if self.seen:
            self.check(clock.total_steps)

    def check(self, steps: int | None = None) -> None:
        """Stops listening; raises :class:`ClusterFault` when anything was heard."""
        self.stop()
        if self.seen:
            raise ClusterFault(
                f"{LOST}, and TensorFlow's coordinator ran the lost steps again on the workers left, so these step "
                f"times are not the whole cluster's: {self.heard()}"
                + (f" (the cell stopped after step {steps}, when it was heard)" if steps is not None else ""))

    def heard(self) -> str:
        """What was heard, for a failed cell's reason."""
        more = len(self.seen) - SHOWN
        return "; ".join(self.seen[:SHOWN]) + (f"; and {more} more" if more > 0 else "")


def listen() -> Faults:
    """Listens to TensorFlow's logger (``tensorflow``, where ``tf_logging`` writes) until
    :meth:`Faults.check`; a listener an earlier cell of this process left (it raised before
    its check) is stopped first."""
    logger = logging.getLogger("tensorflow")
    for stale in [f for f in logger.filters if isinstance(f, Faults)]:
        stale.stop()
    return Faults(logger)
