"""Time to a target quality: train until a test metric reaches a value, and how long it took.

A faster step that needs more steps is not faster. A cell with a target (``--target
METRIC=VALUE``, or ``--target default``: the workload's own) trains, evaluates the
held-out test examples every ``eval_every`` steps (the same interval for every cell, so
that every cell's reached step is rounded the same way), and stops at the first
evaluation that reaches the target or at its step budget (``max_steps``). It records
the steps and training wall time to the target (evaluations excluded, their cost kept
apart) and the curve (step, training seconds, metric) of every evaluation.

Its repeats are training seeds (the accuracy guard's seeds): the cell reports the median
time to target over seeds with a distribution-free interval; a seed that never reached
the target is censored ("not reached in N steps") and ranks slower than any that did,
as MLPerf Training counts a run that does not converge.

Parent side: :func:`parse`, :func:`for_workload`. Child side: :class:`Tracker`, which
the loops call after each timed unit (:attr:`distbench.loops.TrainContext.after_step`).
"""

from __future__ import annotations

import time

from distbench.core.errors import UserError
from distbench.core.targets import Target


class Tracker:
    """Evaluates every ``eval_every`` steps and says when to stop; records the curve.

    ``evaluate()`` returns the test metrics of the model as it is now (a plain copy's
    forward passes; it does not change the model). Training time is the wall time since
    :meth:`start` less the time spent evaluating.
    """

    def __init__(self, target: Target, evaluate, eval_every: int, max_steps: int, clock) -> None:
        self.target, self._evaluate = target, evaluate
        self.eval_every, self.max_steps, self._clock = eval_every, max_steps, clock
        self.curve: list[dict] = []
        self.eval_s = 0.0
        self.reached: dict | None = None
        self.last: dict = {}          # the latest evaluation's test metrics
        self._next = eval_every
        self._started = time.perf_counter()

    def start(self) -> None:
        self._started = time.perf_counter()

    def __call__(self, steps: int) -> bool:
        """Called after each timed unit with the steps done so far; True: stop training."""
        if steps < self._next and steps < self.max_steps:
            return False
        if steps > min(self._next, self.max_steps):   # a unit of several steps ended past the point
            raise UserError(late(min(self._next, self.max_steps), steps, self._clock.steps[-1]))
        self._next = (steps // self.eval_every + 1) * self.eval_every
        train_s = time.perf_counter() - self._started - self.eval_s
        began = time.perf_counter()
        self.last = self._evaluate()
        self.eval_s += time.perf_counter() - began
        value = float(self.last[self.target.metric])
        point = {"step": steps, "train_s": train_s, "timed_s": sum(d * k for d, k in zip(self._clock.durations,
                                                                                           self._clock.steps)),
                 "value": value}
        self.curve.append(point)
        if self.target.reached(value):
            self.reached = point
            return True
        return steps >= self.max_steps

    def record(self) -> dict:
        reached = self.reached
        return {
            "metric": self.target.metric, "value": self.target.value, "op": self.target.op, "eval_every": self.eval_every,
            "max_steps": self.max_steps, "reached": reached is not None,
            "steps": reached["step"] if reached else None,
            "time_s": reached["train_s"] if reached else None,
            "timed_s": reached["timed_s"] if reached else None,
            "steps_run": self.curve[-1]["step"] if self.curve else 0,
            "evaluations": len(self.curve), "eval_s": self.eval_s, "curve": self.curve,
        }


def late(point: int, steps: int, unit: int) -> str:
    """Why a cell that would evaluate its target at step ``point`` is refused at ``steps``:
    a timed unit of ``unit`` steps (fit's calls) ended past it (checked before the cell runs,
    :func:`distbench.core.fit_calls.evaluation_problem`, where its epoch's length is known)."""
    return (f"the target was due for evaluation at step {point}, but the loop's calls of {unit} steps first ended at "
            f"step {steps}: its time to target would read longer than another loop's; give --eval-every, "
            f"--max-steps and --steps-per-epoch as multiples of --steps-per-execution.")
