"""Targets of time-to-target cells: ``--target METRIC=VALUE`` parsed, and each workload's default.

Read by the parent (planning, tables) and by the worker's tracker
(:mod:`distbench.trackers.target`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from distbench.core.errors import UserError

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
