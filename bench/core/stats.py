"""Pure statistics over step-time samples: raw samples in, derived values out."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import numpy as np


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


def _bootstrap_medians(repeats: Sequence[Sequence[float]], resamples: int, rng) -> "np.ndarray":
    """``resamples`` bootstrap values of the median of per-process medians.

    Each resample draws processes with replacement, then steps within each drawn
    process (Saravanan et al. 2020, "Application of the hierarchical bootstrap to
    multi-level data"), so the spread carries run-to-run noise as well as step noise.
    """
    import numpy as np

    # (resamples, repeats): each process's bootstrap medians, then processes redrawn.
    per_process = np.stack([
        np.median(np.asarray(r)[rng.integers(0, len(r), (resamples, len(r)))], axis=1) for r in repeats
    ], axis=1)
    pick = rng.integers(0, len(repeats), (resamples, len(repeats)))
    return np.median(np.take_along_axis(per_process, pick, axis=1), axis=1)


def _interval(values, confidence: float) -> tuple[float, float]:
    import numpy as np

    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


MIN_SAMPLES_95 = 6   # the fewest samples whose range holds their median with 95% (1 - 2 * 0.5**6 = 97%)


def hierarchical_bootstrap_median_ci(
    repeats: Sequence[Sequence[float]], confidence: float = 0.95, resamples: int = 1000, seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of per-process medians (see above)."""
    import numpy as np

    return _interval(_bootstrap_medians(repeats, resamples, np.random.default_rng(seed)), confidence)


def bootstrap_median_ci(
    values: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of ``values`` (independent units). Seeded."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    return _interval(np.median(x[rng.integers(0, len(x), (resamples, len(x)))], axis=1), confidence)


def median_of_medians(repeats: Sequence[Sequence[float]]) -> float:
    """The median over processes of each process's median step time."""
    return percentile([percentile(r, 50) for r in repeats], 50)


# -- verdicts on processes, not steps --------------------------------------------------------
#
# A verdict's unit is the process (or an interleaved pair of processes): the steps of one
# process share its machine state and are not independent evidence about another process.


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with ``df`` degrees of freedom (scipy.stats.t.ppf)."""
    from scipy.stats import t

    return float(t.ppf(p, df))


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (independent units, at least two)."""
    if len(values) < 2:
        raise ValueError("an interval needs at least two independent values")
    m, sd = mean(values), stdev(values)
    half = t_quantile(1 - (1 - confidence) / 2, len(values) - 1) * sd / math.sqrt(len(values))
    return m - half, m + half


def sign_flip_p(values: Sequence[float], exact_up_to: int = 16, resamples: int = 20000, seed: int = 0) -> float:
    """Two-sided p of the sign-flip permutation test that ``values`` are centred on 0.

    Exact (all 2^n sign patterns) for n <= ``exact_up_to``; else Monte Carlo. Under the
    null each paired log-ratio is as likely positive as negative, so the test is exact at
    any n; its smallest reachable p is :func:`smallest_sign_flip_p` (2 / 2^n).
    """
    import itertools

    n = len(values)
    if n == 0:
        return 1.0
    observed = abs(sum(values)) - 1e-12
    if n <= exact_up_to:
        hits = sum(abs(sum(s * v for s, v in zip(signs, values))) >= observed
                   for signs in itertools.product((1, -1), repeat=n))
        return hits / 2**n
    import numpy as np

    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(resamples, n))
    return float((np.abs(signs @ np.asarray(values)) >= observed).mean())


def smallest_sign_flip_p(n: int) -> float:
    """The smallest p :func:`sign_flip_p` can reach with n values: 2 / 2^n."""
    return 2.0 / 2**n if n else 1.0


def prediction_half_width(values: Sequence[float], confidence: float = 0.95) -> float:
    """Half-width of the prediction interval for one new value drawn like ``values``:
    t(1 - (1 - c)/2, n - 1) x sd x sqrt(1 + 1/n) (n >= 2)."""
    n = len(values)
    return t_quantile(1 - (1 - confidence) / 2, n - 1) * stdev(values) * math.sqrt(1 + 1 / n)


def pairs_to_detect(sd_log_ratio: float, effect: float, threshold: float, confidence: float = 0.95,
                    power: float = 0.8, most: int = 10_000) -> int | None:
    """Interleaved pairs needed for the interval of a true ``effect`` (e.g. 0.10) to clear
    ``threshold`` (the verdict band's edge) with probability ``power``, given the standard
    deviation of one pair's log-ratio: the verdict's own Student-t interval, its power from
    the noncentral t (at least 3 pairs; None beyond ``most``). A normal approximation had
    asked 3 pairs where they catch it half the time."""
    from scipy.stats import nct, t

    margin = math.log1p(effect) - math.log1p(threshold)
    if margin <= 0:
        raise ValueError(f"an effect of {effect:.0%} cannot clear a threshold of {threshold:.0%}")
    for n in range(3, most + 1):
        critical = t.ppf(1 - (1 - confidence) / 2, n - 1)
        if nct.sf(critical, n - 1, margin * math.sqrt(n) / sd_log_ratio) >= power:
            return n
    return None


def censored_median(values: Sequence[float]) -> float:
    """The median of values where ``math.inf`` stands for a run that never finished
    (censored): it ranks above every finished one, as MLPerf ranks a run that does not
    converge. ``inf`` when half or more never finished."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("no values")
    middle = ordered[(n - 1) // 2 : n // 2 + 1]
    return math.inf if math.inf in middle else sum(middle) / len(middle)


def median_order_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """A distribution-free interval of the median: order statistics (k, n + 1 - k) with
    the largest k whose coverage 1 - 2 P(Binomial(n, 1/2) <= k - 1) is at least
    ``confidence``; returns (low, high, coverage). Too few values for that coverage (5
    reach 93.8%) give the widest interval, min to max, with the coverage it has.
    Censored values (``inf``) rank last, so an upper bound may be ``inf``."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("no values")

    def coverage(k: int) -> float:
        return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n

    k = 1
    while k + 1 <= (n + 1) // 2 and coverage(k + 1) >= confidence:
        k += 1
    return ordered[k - 1], ordered[n - k], coverage(k)


def majority_share(labels) -> float | None:
    """The test accuracy of always answering the commonest class: ``labels`` as class ids
    (integers, or floats that are whole numbers; one per example) or one-hot rows (each row
    one 1); None for labels of any other form (a regression's, multi-hot rows) or none."""
    import numpy as np   # the parent's statistics do not need it

    if labels is None:
        return None
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.dtype.kind in "biuf" and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
        y = y.argmax(axis=1)   # one-hot (multi-hot rows, whose accuracy is per label, are not)
    if y.ndim != 1 or not y.size or y.dtype.kind not in "biuf" or not np.all(np.mod(y, 1) == 0):
        return None
    _, counts = np.unique(y, return_counts=True)
    return round(float(counts.max() / counts.sum()), 4)

