"""The accuracy tolerance: when B's test metric is worse than A's beyond it (``check``,
``compare``, interleaved pairs), and the values of it that are refused."""

from __future__ import annotations

from distbench.core import targets
from distbench.core.errors import UserError


def metric_worse(a: float | None, b: float | None, direction: str, tolerance: float, metric: str = "") -> bool:
    """B's test metric worse than A's beyond ``tolerance``: an absolute share where higher is better
    (accuracy, AUC), a share of A's value where lower is (MAE); never with either missing."""
    check_tolerance(tolerance, direction, metric)
    if a is None or b is None:
        return False
    if direction == "lower":
        return b - a > tolerance * abs(a)
    return b - a < -tolerance


def check_tolerance(tolerance: float, direction: str, metric: str) -> None:
    """UserError for ``5`` typed for 5%: no loss of a share fails it (half an AUC lost passed);
    on a lower-is-better metric, a share of A's value, an MAE 3.8 times worse passed."""
    give = "give a fraction (0.05) or a percentage (5%)."
    if direction != "lower" and tolerance >= 1 and any(word in metric.lower() for word in targets.SHARES):
        raise UserError(f"--accuracy-tolerance {tolerance:g} is not below 1, and {metric} is a share from 0 to 1: no "
                        f"loss of it could fail the check; {give}")
    if direction == "lower" and tolerance >= 1:
        raise UserError(f"--accuracy-tolerance {tolerance:g} is a share of A's {metric or 'metric'}, which is lower-is-"
                        f"better: it would pass B at {1 + tolerance:g} times A's value; {give}")
