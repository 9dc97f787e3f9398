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


# Names of metrics for which lower is better (losses and errors); any other is higher-is-better
# unless a workload says otherwise (Workload.directions).
LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "msle", "mape", "crossentropy", "hinge", "poisson",
                   "divergence", "logcosh", "huber")
OPS = (">=", "<=")
# Metrics that are shares (0 to 1, higher better), and errors that are never below 0: a
# target outside what they can read is never, or at once, reached.
SHARES = ("accuracy", "auc", "precision", "recall", "f1")
NON_NEGATIVE = ("error", "mae", "mse", "msle", "mape", "rmse", "crossentropy", "hinge", "divergence", "logcosh", "huber")


def direction(metric: str) -> str:
    """``lower`` when ``metric``'s name says lower is better (loss, mae, ... error), else ``higher``."""
    name = metric.lower()
    return "lower" if any(word in name for word in LOWER_IS_BETTER) else "higher"


@dataclass(frozen=True)
class Target:
    metric: str
    value: float
    op: str = ">="          # reached when the metric is >= value (or <= value)

    @property
    def text(self) -> str:
        """``accuracy=0.6`` (at least), ``mae<=40`` (at most)."""
        return f"{self.metric}{'=' if self.op == '>=' else '<='}{self.value:g}"

    @property
    def label(self) -> str:
        """How it names a cell: ``to_accuracy_0.6``, ``to_mae_le_40``."""
        return f"to_{self.metric}_{'' if self.op == '>=' else 'le_'}{self.value:g}"

    def reached(self, value: float) -> bool:
        return value >= self.value if self.op == ">=" else value <= self.value


def parse(text: str, directions=direction) -> Target:
    """``METRIC>=VALUE``, ``METRIC<=VALUE``, or ``METRIC=VALUE`` (the metric's good direction:
    at least for accuracy, at most for mae) -> Target (UserError naming the forms when it is none)."""
    op = next((o for o in OPS if o in text), "=")
    metric, sep, value = text.partition(op)
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not metric.strip() or not math.isfinite(number):
        raise UserError(f"Bad target {text!r}: give METRIC=VALUE, METRIC>=VALUE or METRIC<=VALUE (e.g. "
                        f"accuracy=0.6, auc>=0.85, mae<=40), or '{DEFAULT}' for each workload's own target.")
    metric = metric.strip()
    good = ">=" if directions(metric) == "higher" else "<="
    if op == "=":
        op = good
    elif op != good:   # a target is a value to get better to; mae>=60 would be met by a worse model
        raise UserError(f"Bad target {text!r}: {metric} is better {'higher' if good == '>=' else 'lower'}, so its "
                        f"target is reached at {'or above' if good == '>=' else 'or below'} a value: give "
                        f"{metric}{good}{value.strip()} (or {metric}={value.strip()}).")
    _check_reachable(text, metric, number, op)
    return Target(metric, number, op)


def _check_reachable(text: str, metric: str, value: float, op: str) -> None:
    """A share's target within (0, 1], an error's at 0 or above (UserError otherwise)."""
    name = metric.lower()
    if op == ">=" and any(word in name for word in SHARES) and not 0 < value <= 1:
        raise UserError(f"Bad target {text!r}: {metric} is a share from 0 to 1, so a target of {value:g} is "
                        f"{'never' if value > 1 else 'at once'} reached; give a value above 0 and at most 1 "
                        f"(e.g. {metric}=0.8).")
    if op == "<=" and any(word in name for word in NON_NEGATIVE) and value < 0:
        raise UserError(f"Bad target {text!r}: {metric} is never below 0, so a target of {value:g} is never "
                        f"reached; give a value of 0 or more (e.g. {metric}<=40).")


def for_workload(text: str, workload, data: str) -> Target:
    """The target of ``workload`` on ``data`` that ``--target text`` asks for, checked
    against the metrics the workload scores (when it declares them; otherwise its run's
    check does it, in a worker, before any timing)."""
    directions = getattr(workload, "direction", direction)
    if text == DEFAULT:
        defaults = getattr(workload, "default_targets", {})
        key = "synthetic" if data == "synthetic" else next((k for k in (data, "auto", "keras") if k in defaults), None)
        if key not in defaults:
            declared = f"it has one for {', '.join(defaults)}" if defaults else "it declares none: default_targets"
            raise UserError(f"{workload.name} has no default target for data {data!r} ({declared}); give --target "
                            "METRIC=VALUE.")
        return parse(defaults[key], directions)
    target = parse(text, directions)
    metrics = getattr(workload, "test_metrics", ())
    if metrics is not None:
        require_metric(target.metric, workload.name, metrics)
    return target


def require_metric(metric: str, workload: str, metrics) -> None:
    """UserError unless ``metric`` is one of the test metrics ``workload`` scores."""
    if metric not in metrics:
        raise UserError(f"Target metric {metric!r} is not one {workload} scores; valid: {', '.join(metrics)}.")
