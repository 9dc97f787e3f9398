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
the loops call after each timed unit (:attr:`bench.loops.TrainContext.after_step`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from bench.errors import UserError

EVAL_EVERY = 25        # steps between evaluations, the same for every cell
MAX_STEPS = 1000       # step budget of a target cell unless --max-steps says otherwise
DEFAULT = "default"


@dataclass(frozen=True)
class Target:
    metric: str
    value: float

    @property
    def text(self) -> str:
        return f"{self.metric}={self.value:g}"

    @property
    def label(self) -> str:
        """How it names a cell: ``to_accuracy_0.6``."""
        return f"to_{self.metric}_{self.value:g}"


def parse(text: str) -> Target:
    """``METRIC=VALUE`` -> Target (UserError naming the form when it is not)."""
    metric, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not metric.strip() or not math.isfinite(number):
        raise UserError(f"Bad target {text!r}: give METRIC=VALUE (e.g. accuracy=0.6 or auc=0.85), or "
                        f"'{DEFAULT}' for each workload's own target.")
    return Target(metric.strip(), number)


def for_workload(text: str, workload, data: str) -> Target:
    """The target of ``workload`` on ``data`` that ``--target text`` asks for, checked
    against the metrics the workload scores."""
    if text == DEFAULT:
        defaults = getattr(workload, "default_targets", {})
        key = "synthetic" if data == "synthetic" else "keras" if data in ("keras", "auto") else None
        if key not in defaults:
            raise UserError(f"{workload.name} has no default target for data {data!r} (it has one for "
                            f"{', '.join(defaults) or 'none'}); give --target METRIC=VALUE.")
        return parse(defaults[key])
    target = parse(text)
    metrics = tuple(getattr(workload, "test_metrics", ()))
    if target.metric not in metrics:
        raise UserError(f"Target metric {target.metric!r} is not one {workload.name} scores; "
                        f"valid: {', '.join(metrics)}.")
    return target


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
        if value >= self.target.value:
            self.reached = point
            return True
        return steps >= self.max_steps

    def record(self) -> dict:
        reached = self.reached
        return {
            "metric": self.target.metric, "value": self.target.value, "eval_every": self.eval_every,
            "max_steps": self.max_steps, "reached": reached is not None,
            "steps": reached["step"] if reached else None,
            "time_s": reached["train_s"] if reached else None,
            "timed_s": reached["timed_s"] if reached else None,
            "steps_run": self.curve[-1]["step"] if self.curve else 0,
            "evaluations": len(self.curve), "eval_s": self.eval_s, "curve": self.curve,
        }
