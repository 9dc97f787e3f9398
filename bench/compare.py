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

from dataclasses import asdict, dataclass, field

from bench import guard, records, stats
from bench.errors import UserError
from bench.machine import fingerprint
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
    cell: str
    presence: str                     # "both", "only in A", "only in B", or why not comparable
    median_a: float | None = None
    median_b: float | None = None
    ratio: float | None = None        # median B / median A: > 1 means B is slower
    ratio_ci: tuple[float, float] | None = None
    p_value: float | None = None
    throughput_ratio: float | None = None
    accuracy_a: float | None = None
    accuracy_b: float | None = None
    accuracy_delta: float | None = None
    threshold: float = DEFAULT_THRESHOLD
    verdict: str = ""                 # "faster", "slower", "same", "too noisy", or "" when not comparable
    notes: list[str] = field(default_factory=list)
    processes_a: int = 0              # repeats (fresh processes) behind each side
    processes_b: int = 0
    guard_a: str | None = None        # the accuracy guard's status in each run, if it ran
    guard_b: str | None = None
    guard_message_b: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Comparison:
    a: StoredRun
    b: StoredRun
    cells: list[CellComparison]
    machine_diff: list[tuple[str, object, object]]

    @property
    def compared(self) -> list[CellComparison]:
        return [c for c in self.cells if c.verdict]


def machine_diff(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """The fingerprint fields that differ between two machine_info dicts."""
    fa, fb = fingerprint(a.get("distbench", a)), fingerprint(b.get("distbench", b))
    return [(k, fa[k], fb[k]) for k in fa if fa[k] != fb[k]]


def compare_cell(cell: str, rep_a: list[dict], rep_b: list[dict], threshold: float, alpha: float) -> CellComparison:
    sa, sb = records.pooled_samples(rep_a), records.pooled_samples(rep_b)
    if not sa or not sb:
        side = "A" if not sa else "B"
        status = ((rep_a if not sa else rep_b) or [{}])[0]
        return CellComparison(cell, f"not comparable: {status.get('status', 'missing')} in {side}", threshold=threshold)
    pa, pb = records.per_process_samples(rep_a), records.per_process_samples(rep_b)
    ma, mb = stats.median_of_medians(pa), stats.median_of_medians(pb)
    ratio, p = mb / ma, stats.mann_whitney_p(sa, sb)
    ci = stats.hierarchical_bootstrap_ratio_ci(pa, pb)
    if p < alpha and ci[0] > 1 and ratio > 1 + threshold:
        verdict = "slower"
    elif p < alpha and ci[1] < 1 and ratio < 1 / (1 + threshold):
        verdict = "faster"
    elif ci[1] > 1 + threshold or ci[0] < 1 / (1 + threshold):
        verdict = TOO_NOISY
    else:
        verdict = "same"
    notes = []
    if len(pa) < 2 or len(pb) < 2:
        notes.append("one process per side: the interval ignores run-to-run noise; use --repeats")
    acc_a, acc_b = records.mean_test(rep_a), records.mean_test(rep_b)
    guard_a, guard_b = guard.verdict(rep_a), guard.verdict(rep_b)
    return CellComparison(
        cell, "both", ma, mb, ratio, ci, p, ma / mb,
        acc_a, acc_b, None if acc_a is None or acc_b is None else acc_b - acc_a,
        threshold, verdict, notes, len(pa), len(pb),
        guard_a.get("status"), guard_b.get("status"), guard_b.get("message"),
    )


def compare_runs(
    a: StoredRun, b: StoredRun, threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA,
    overrides: dict[str, float] | None = None,
) -> Comparison:
    """Compares every cell of ``a`` and ``b``; raises UserError when none is shared."""
    cells_a, cells_b = a.cells(), b.cells()
    shared = [c for c in cells_a if c in cells_b]
    if not shared:
        raise UserError(
            f"Runs {a.label} and {b.label} have no cells in common (A: {', '.join(cells_a) or 'none'}; "
            f"B: {', '.join(cells_b) or 'none'}). Compare runs of the same selection."
        )
    overrides = overrides or {}
    rows = [compare_cell(c, cells_a[c], cells_b[c], overrides.get(c, threshold), alpha) for c in shared]
    rows += [CellComparison(c, "only in A") for c in cells_a if c not in cells_b]
    rows += [CellComparison(c, "only in B") for c in cells_b if c not in cells_a]
    return Comparison(a, b, rows, machine_diff(a.machine_info, b.machine_info))


def regressions(comparison: Comparison, accuracy_tolerance: float = DEFAULT_ACCURACY_TOLERANCE) -> list[str]:
    """Why the newer run (B) fails the check: one line per slower or less accurate cell."""
    reasons = []
    for c in comparison.compared:
        if c.verdict == "slower":
            reasons.append(
                f"{c.cell}: slower, median {c.median_a * 1e3:.2f} -> {c.median_b * 1e3:.2f} ms "
                f"(x{c.ratio:.2f} > x{1 + c.threshold:.2f}, p={c.p_value:.1e})"
            )
        if c.accuracy_delta is not None and c.accuracy_delta < -accuracy_tolerance:
            reasons.append(
                f"{c.cell}: test accuracy {c.accuracy_a:.3f} -> {c.accuracy_b:.3f} "
                f"(lost {-c.accuracy_delta:.3f} > tolerance {accuracy_tolerance})"
            )
        if c.guard_b == "low" and c.guard_a != "low":
            reasons.append(f"{c.cell}: learns worse than its reference now (accuracy guard: {c.guard_message_b})")
    return reasons


def unchecked(c: CellComparison) -> bool:
    """Too noisy to rule out a slow-down of the threshold's size (what the check cannot pass)."""
    return c.verdict == TOO_NOISY and c.ratio_ci[1] > 1 + c.threshold


def too_noisy(comparison: Comparison) -> list[str]:
    """One line per cell the regression check cannot pass or fail: see :func:`unchecked`."""
    return [
        f"{c.cell}: B/A {c.ratio:.2f}, 95% CI [{c.ratio_ci[0]:.2f}, {c.ratio_ci[1]:.2f}] reaches beyond "
        f"x{1 + c.threshold:.2f} ({c.processes_a}/{c.processes_b} processes)"
        for c in comparison.compared if unchecked(c)
    ]
