"""How often the interval between stored runs holds the truth (docs/design.md, "Stored runs").

Run-level log medians drawn normal (sd 1: the coverage does not depend on it), a history of
n of them besides A and B, and the interval of B/A as bench/analysis/compare.py builds it:
the history's spread from the median of its successive differences (``robust_sd``),
widened by Student's t, once with n - 1 degrees of freedom (before) and once with
``noise_df(n)`` = max(2, 0.47 (n - 1) + 0.6) (now). 400,000 histories per n; seed 3.

    python docs/sims/interval_coverage.py
"""

import numpy as np
from scipy import stats

rng = np.random.default_rng(3)
DRAWS = 400_000


def robust_sd(x):
    return 1.4826 * np.median(np.abs(np.diff(x, axis=1)), axis=1) / np.sqrt(2)


for n in (3, 4, 5, 6, 8, 10, 15, 20, 30, 40, 60):
    sd = robust_sd(rng.normal(size=(DRAWS, n)))
    diff = rng.normal(size=DRAWS) * np.sqrt(2)   # log B - log A, both drawn as the history's runs
    held = {}
    for label, df in (("n - 1", n - 1), ("noise_df", max(2.0, 0.47 * (n - 1) + 0.6))):
        held[label] = np.mean(np.abs(diff) <= stats.t.ppf(0.975, df) * np.sqrt(2) * sd)
    print(f"{n:3d} runs: held {held['n - 1']:.4f} with n - 1, {held['noise_df']:.4f} with noise_df")
