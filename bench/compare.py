"""Cell-by-cell comparison of two stored runs, and the regression check built on it.

The unit of replication is the process: on the project's 2-core VM a cell's median
moved by up to 2x between fresh processes of the same command, while the steps of one
process agree closely. So the estimate is the median over processes (repeats) of each
process's median, its interval comes from a hierarchical bootstrap (processes, then
steps), and a verdict needs all three of: the per-step samples differ significantly
(Mann-Whitney U, p < alpha), the interval excludes 1, and the ratio is beyond the
threshold. "same" needs more than the absence of evidence: the interval must lie inside
the threshold band [1/(1+t), 1+t], which rules out a change of the threshold's size. A
cell whose interval is wider than that is "too noisy": its spread cannot support the
comparison, and the regression check lists it instead of passing it silently. With one
process per side the interval cannot see run-to-run noise; only the threshold guards
then, and the row says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import stats
from bench.errors import UserError
from bench.machine import fingerprint
from bench.results import CellResult
from bench.storage import StoredRun

# From A/A runs on the project's 2-core VM (README, "Noise, measured"; tools/noise.py):
# at 25%, comparisons of 3-process runs raised false alarms on 7% of A/A pairs and caught
# every run slowed by CPU hogs; single-process runs raised them on 40% (their medians
# moved by up to 2x), which no threshold short of useless fixes: use --repeats.
DEFAULT_THRESHOLD = 0.25
DEFAULT_ALPHA = 0.01
DEFAULT_ACCURACY_TOLERANCE = 0.05
TOO_NOISY = "too noisy"


@dataclass
class CellComparison:
    """One cell in both runs: the verdict and the numbers behind it (rendered by tables)."""

    cell: str
    presence: str                     # "both", "only in A", "only in B", or "not comparable: ..."
    a: CellResult | None = None
    b: CellResult | None = None
    ratio: float | None = None        # median B / median A: > 1 means B is slower
    ratio_ci: tuple[float, float] | None = None
    p_value: float | None = None
    threshold: float = DEFAULT_THRESHOLD
    verdict: str = ""                 # "faster", "slower", "same", "too noisy", or "" when not comparable

    @property
    def median_a(self) -> float | None:
        return self.a.median if self.verdict else None

    @property
    def median_b(self) -> float | None:
        return self.b.median if self.verdict else None

    @property
    def throughput_ratio(self) -> float | None:
        return 1 / self.ratio if self.ratio else None

    @property
    def one_process(self) -> bool:
        """One process on a side: the interval cannot see run-to-run noise."""
        return bool(self.verdict) and min(self.a.processes, self.b.processes) < 2

    @property
    def accuracy_a(self) -> float | None:
        return self.a.accuracy if self.a else None

    @property
    def accuracy_b(self) -> float | None:
        return self.b.accuracy if self.b else None

    @property
    def accuracy_delta(self) -> float | None:
        a, b = self.accuracy_a, self.accuracy_b
        return None if a is None or b is None else b - a

    @property
    def unchecked(self) -> bool:
        """Too noisy to rule out a slow-down of the threshold's size (what the check cannot pass)."""
        return self.verdict == TOO_NOISY and self.ratio_ci[1] > 1 + self.threshold

    def as_dict(self) -> dict:
        return {
            "cell": self.cell, "presence": self.presence, "verdict": self.verdict, "threshold": self.threshold,
            "median_a": self.median_a, "median_b": self.median_b, "ratio": self.ratio,
            "ratio_ci": list(self.ratio_ci) if self.ratio_ci else None, "p_value": self.p_value,
            "throughput_ratio": self.throughput_ratio, "processes_a": self.a.processes if self.a else 0,
            "processes_b": self.b.processes if self.b else 0, "accuracy_a": self.accuracy_a,
            "accuracy_b": self.accuracy_b, "accuracy_delta": self.accuracy_delta,
            "guard_a": self.a.guard.get("status") if self.a else None,
            "guard_b": self.b.guard.get("status") if self.b else None,
        }


@dataclass
class Comparison:
    a: StoredRun
    b: StoredRun
    cells: list[CellComparison]
    machine_diff: list[tuple[str, object, object]]

    @property
    def compared(self) -> list[CellComparison]:
        return [c for c in self.cells if c.verdict]


@dataclass(frozen=True)
class Regression:
    """Why the newer run fails the check for one cell: ``kind`` slower, accuracy or guard."""

    kind: str
    comparison: CellComparison
    tolerance: float | None = None


def machine_diff(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """The fingerprint fields that differ between two machine_info dicts."""
    fa, fb = fingerprint(a.get("distbench", a)), fingerprint(b.get("distbench", b))
    return [(k, fa[k], fb[k]) for k in fa if fa[k] != fb[k]]


def compare_cell(a: CellResult, b: CellResult, threshold: float, alpha: float) -> CellComparison:
    """The verdict on one cell present in both runs."""
    if not a.measured or not b.measured:
        side, result = ("A", a) if not a.measured else ("B", b)
        return CellComparison(a.id, f"not comparable: {result.status} in {side}", a, b, threshold=threshold)
    ratio = b.median / a.median
    p = stats.mann_whitney_p([s for r in a.per_process for s in r], [s for r in b.per_process for s in r])
    ci = stats.hierarchical_bootstrap_ratio_ci(a.per_process, b.per_process)
    if p < alpha and ci[0] > 1 and ratio > 1 + threshold:
        verdict = "slower"
    elif p < alpha and ci[1] < 1 and ratio < 1 / (1 + threshold):
        verdict = "faster"
    elif ci[1] > 1 + threshold or ci[0] < 1 / (1 + threshold):
        verdict = TOO_NOISY
    else:
        verdict = "same"
    return CellComparison(a.id, "both", a, b, ratio, ci, p, threshold, verdict)


def compare_runs(
    a: StoredRun, b: StoredRun, threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA,
    overrides: dict[str, float] | None = None,
) -> Comparison:
    """Compares every cell of ``a`` and ``b``; raises UserError when none is shared."""
    cells_a, cells_b = a.results, b.results
    shared = [c for c in cells_a if c in cells_b]
    if not shared:
        raise UserError(
            f"Runs {a.label} and {b.label} have no cells in common (A: {', '.join(cells_a) or 'none'}; "
            f"B: {', '.join(cells_b) or 'none'}). Compare runs of the same selection."
        )
    overrides = overrides or {}
    rows = [compare_cell(cells_a[c], cells_b[c], overrides.get(c, threshold), alpha) for c in shared]
    rows += [CellComparison(c, "only in A", a=cells_a[c]) for c in cells_a if c not in cells_b]
    rows += [CellComparison(c, "only in B", b=cells_b[c]) for c in cells_b if c not in cells_a]
    return Comparison(a, b, rows, machine_diff(a.machine_info, b.machine_info))


def regressions(comparison: Comparison, accuracy_tolerance: float = DEFAULT_ACCURACY_TOLERANCE) -> list[Regression]:
    """Why the newer run (B) fails the check: slower, less accurate, or newly flagged cells."""
    found = []
    for c in comparison.compared:
        if c.verdict == "slower":
            found.append(Regression("slower", c))
        if c.accuracy_delta is not None and c.accuracy_delta < -accuracy_tolerance:
            found.append(Regression("accuracy", c, accuracy_tolerance))
        if c.b.guard.get("status") == "low" and c.a.guard.get("status") != "low":
            found.append(Regression("guard", c))
    return found


def too_noisy(comparison: Comparison) -> list[CellComparison]:
    """The cells the regression check can neither pass nor fail (see ``unchecked``)."""
    return [c for c in comparison.compared if c.unchecked]
