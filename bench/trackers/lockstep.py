"""Lockstep pairs: two worker processes take turns, one timed step each.

Run back to back, two processes of the same cell still differed by 9-15% here (the
sd of a pair's log-ratio, docs/measurements.md): the machine's speed moves within
seconds. Taking turns step by step puts every step of side B right next to a step of
side A, as the first overhead benchmark did inside one process (whose interleaved
ratios agreed within 2-3%).

Child side (:class:`LockstepClock`, this module): before each timed unit the worker says it is ready
and waits for its turn; after it, it hands the turn back; when training ends it says so
and waits until its partner has finished too (so that its evaluation never overlaps the
partner's timed steps). Parent side (:class:`distbench.launchers.relay.Relay`): passes the turn A, B, A, B, ...
through two FIFOs per worker, skipping a worker that has ended or died.

What lockstep cannot see: work a process does in the background while its partner
steps (``tf.data`` prefetching) overlaps the partner's step instead of its own, on both
sides alike; the ratio stays fair, input-pipeline costs are partly hidden.
"""

from __future__ import annotations

import os
import time

from distbench.core.lockstep import DONE, END, ENV, GO, READY, not_judged
from distbench.trackers.timing import StepClock, Timer


class Turns:
    """A worker's side of the turn-taking: outside any timed region (child side)."""

    def __init__(self, prefix: str) -> None:
        self._go = os.open(prefix + ".go", os.O_RDONLY)
        self._done = os.open(prefix + ".done", os.O_WRONLY)

    def _wait(self) -> None:
        if os.read(self._go, 1) != GO:
            raise RuntimeError("lockstep: the parent's relay is gone")

    def before(self) -> None:
        """Says this worker is ready for a step and waits for its turn."""
        os.write(self._done, READY)
        self._wait()

    def after(self) -> None:
        """Hands the turn back after a step."""
        os.write(self._done, DONE)

    def end(self) -> None:
        """Training is over: waits for the partner to finish its steps too."""
        os.write(self._done, END)
        self._wait()
        os.close(self._go)
        os.close(self._done)


def turns() -> Turns | None:
    """This worker's turns, when its parent asked for lockstep (else None)."""
    prefix = os.environ.get(ENV)
    return Turns(prefix) if prefix else None


class LockstepClock(StepClock):
    """A step clock that times a unit only on its turn (child side)."""

    def __init__(self, turns: Turns, timer: Timer = time.perf_counter) -> None:
        super().__init__(timer)
        self.turns = turns

    def start(self) -> None:
        self.turns.before()
        super().start()

    def stop(self, steps: int = 1) -> None:
        try:
            super().stop(steps)
        except BaseException:   # a check that raised (StepClock.checks) still hands the turn on,
            try:                # and its fault stays the cell's reason if the relay is gone too
                self.turns.after()
            except OSError:
                pass
            raise
        self.turns.after()


def clock() -> StepClock:
    """This worker's step clock: in lockstep when its parent asked for it."""
    mine = turns()
    return LockstepClock(mine) if mine else StepClock()


def finish(clock: StepClock) -> None:
    if isinstance(clock, LockstepClock):
        clock.turns.end()


def disturbance(found: dict | None, clock: StepClock) -> dict | None:
    """A lockstep worker's disturbance (:mod:`distbench.trackers.disturbance`), not judged
    (:func:`distbench.core.lockstep.not_judged`)."""
    if found is None or not isinstance(clock, LockstepClock):
        return found
    return not_judged(found)
