"""Pure statistics over step-time samples: raw samples in, derived values out."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between order statistics.

    This is Hyndman & Fan's definition 7 (NumPy's and R's default): the value at rank
    h = (n - 1) q / 100 of the sorted samples, interpolated between floor(h) and ceil(h).
    """
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100]; received q={q}")
    ordered = sorted(samples)
    h = (len(ordered) - 1) * q / 100
    lo = math.floor(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


def mean(samples: Sequence[float]) -> float:
    return math.fsum(samples) / len(samples)


def stdev(samples: Sequence[float]) -> float:
    """Sample standard deviation (n - 1 in the denominator); 0 for a single sample."""
    if len(samples) < 2:
        return 0.0
    m = mean(samples)
    return math.sqrt(math.fsum((x - m) ** 2 for x in samples) / (len(samples) - 1))


@dataclass(frozen=True)
class Summary:
    """Descriptive statistics of a set of step times (seconds)."""

    n: int
    min: float
    max: float
    mean: float
    stdev: float
    median: float
    p10: float
    p90: float
    q1: float
    q3: float
    iqr: float
    cv: float   # stdev / mean: the spread relative to the typical step

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(samples: Sequence[float]) -> Summary:
    """Summary statistics of ``samples`` (at least one)."""
    if not samples:
        raise ValueError("cannot summarise zero samples")
    m, sd = mean(samples), stdev(samples)
    q1, q3 = percentile(samples, 25), percentile(samples, 75)
    return Summary(
        n=len(samples), min=min(samples), max=max(samples), mean=m, stdev=sd,
        median=percentile(samples, 50), p10=percentile(samples, 10), p90=percentile(samples, 90),
        q1=q1, q3=q3, iqr=q3 - q1, cv=sd / m if m else float("nan"),
    )


def throughput(examples_per_step: int, median_step_s: float) -> float:
    """Examples per second at the median step time."""
    return examples_per_step / median_step_s
