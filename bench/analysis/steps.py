"""Steps in a cell's history: where its level moved, and by how much (asv's idea, this
project's noise model).

A cell's history is its run-level estimates in run order (log of the median step), taken
as piecewise constant plus noise. The fit is the partition into segments that minimises

    sum over points of |y - median of its segment| / b  +  penalty x (segments - 1)

an L1 Potts problem as in asv's step detection (robust to single outliers, which move a
median little), solved exactly by dynamic programming (histories are short). Unlike asv,
the noise scale is not estimated from the fit: it is the cell's between-run noise on this
machine, the same spread ``compare`` judges with (:func:`distbench.analysis.compare.history_noise`),
as the scale of a Laplace distribution of that standard deviation (b = sd / sqrt(2)). The
penalty of one more step is twice the Bayesian information criterion's for its two
parameters (where, and the new level): 2 ln(n), and never less than 2 ln(10). With ln(n)
alone a flat series of 40 Gaussian points showed a step in about a third of draws (the fit
searches every place); with 2 ln(n), in about 5% of draws of 10 or 40 points, while a 20%
step in noise of sd 5% is found at its place or next to it in 19 draws of 20
(tests/analysis/test_steps.py checks at most 10% and at least 9 in 10). Below 10 points
the penalty stays at 2 ln(10), so a stretch of 2 points needs them 3.3 sd apart.

A step found here is a description of the history, not a verdict: the report judges each
with ``compare``'s own rule on the runs either side of it.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

# Below this the machine's noise is not believed (identical medians would make any wobble a step).
NOISE_FLOOR = 0.01
PENALTY = 2.0   # times ln(n), per step
# A short stretch (a history cut by changes of configuration) pays as much for a step as a
# history of 10: with 2 ln(2), two points of pure noise would make a step in about half of draws.
MIN_PENALTY_N = 10


@dataclass(frozen=True)
class Segment:
    """Points ``start`` to ``stop - 1`` of a series at one level (the median of their values)."""

    start: int
    stop: int
    level: float


def segments(values: list[float], sd: float) -> list[Segment]:
    """The L1 Potts fit of ``values`` (logs) at noise ``sd``: its segments, in order."""
    n = len(values)
    if n == 0:
        return []
    scale = max(sd, NOISE_FLOOR) / math.sqrt(2)
    penalty = PENALTY * math.log(max(n, MIN_PENALTY_N))
    cost = _segment_costs(values)
    best = [0.0] + [math.inf] * n      # best[j]: the cheapest fit of values[:j]
    start_of = [0] * (n + 1)           # where the last segment of that fit starts
    for j in range(1, n + 1):
        for i in range(j):
            total = best[i] + cost[i][j] / scale + (penalty if i else 0.0)
            if total < best[j]:
                best[j], start_of[j] = total, i
    bounds, j = [], n
    while j > 0:
        bounds.append((start_of[j], j))
        j = start_of[j]
    return [Segment(i, j, _median(values[i:j])) for i, j in reversed(bounds)]


def _segment_costs(values: list[float]) -> list[list[float]]:
    """cost[i][j]: the sum of |y - median| over values[i:j] (j > i)."""
    n = len(values)
    cost = [[0.0] * (n + 1) for _ in range(n + 1)]
    for i in range(n):
        window: list[float] = []
        for j in range(i, n):
            bisect.insort(window, values[j])
            middle = _median(window, presorted=True)
            cost[i][j + 1] = sum(abs(v - middle) for v in window)
    return cost


def _median(values: list[float], presorted: bool = False) -> float:
    ordered = values if presorted else sorted(values)
    k = len(ordered)
    return ordered[k // 2] if k % 2 else (ordered[k // 2 - 1] + ordered[k // 2]) / 2
