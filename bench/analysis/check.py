"""The regression check: a comparison of stored runs (:mod:`distbench.analysis.compare`)
read as pass, fail or undecided, failing closed.

B fails against A when a cell is ``slower``, its guard metric dropped by more than the
accuracy tolerance, or its guard newly flags it. The guard's reference cell is judged on
the median over its training seeds (the cell and its ``-initN`` seeds, in each run), and
the seeds are not judged one by one: one seed's luck is not a regression. A cell that is
undecided, missing, crashed in any process, or measured differently in the two runs is not a pass unless the
user allows that (a crash never); runs of two machines are not compared unless allowed;
nothing checked is never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from distbench.analysis import guard
from distbench.analysis.compare import (DEFAULT_ACCURACY_TOLERANCE, EXIT_PASS, EXIT_REGRESSION, EXIT_UNDECIDED,
                                        CellComparison, Comparison)
from distbench.analysis.tolerance import metric_worse
from distbench.core import records, stats


@dataclass(frozen=True)
class Regression:
    """Why the newer run fails the check for one cell: ``kind`` slower, accuracy or guard
    (for accuracy: each run's value and over how many training seeds)."""

    kind: str
    comparison: CellComparison
    tolerance: float | None = None
    metric: tuple[float | None, float | None, int] | None = None


SeedGroup = tuple[CellComparison, list[CellComparison]]   # a reference cell, and it with its -initN seeds


def regressions(comparison: Comparison, accuracy_tolerance: float = DEFAULT_ACCURACY_TOLERANCE) -> list[Regression]:
    """Why the newer run (B) fails the check: slower, a lower guard metric, or newly flagged."""
    found = []
    groups = _seed_groups(comparison)
    over_seeds = seed_medians(groups)
    folded = {c.cell for plain, cells in groups for c in cells if c is not plain}   # judged through the median only
    for c in comparison.compared:
        if c.verdict == "slower":
            found.append(Regression("slower", c))
        metric, result = over_seeds.get(c.cell, (c.accuracy_a, c.accuracy_b, 1)), c.b or c.a
        lost = _lost(c)   # a seed's too: the median over seeds would leave it out
        if lost or (c.cell not in folded and metric_worse(metric[0], metric[1], result.guard_direction,
                                                          accuracy_tolerance, result.guard_metric or "")):
            found.append(Regression("accuracy", c, accuracy_tolerance, (c.accuracy_a, None, 1) if lost else metric))
        if guard.worse(c.b.guard) and not guard.worse(c.a.guard):
            found.append(Regression("guard", c))
    return found


def learned_worse(comparison: Comparison) -> set[str]:
    """The cells whose test metric (the guard's) B lost, or that the guard newly flags, at
    the default tolerance: what ``compare`` and the report say beside a speed's verdict (a
    run that learned worse read "faster")."""
    return {r.comparison.cell for r in regressions(comparison) if r.kind in ("accuracy", "guard")}


def _lost(c: CellComparison) -> bool:
    """A's test metric, and a process of B's without one (NaN, stored as null: a model that
    diverged, before workers refused one): no number is not 'no loss'."""
    if c.a is None or c.b is None or c.accuracy_a is None:
        return False
    return any(records.test_value(r, c.b.guard_metric) is None for r in c.b.ok)


def seed_medians(groups: list[SeedGroup]) -> dict[str, tuple[float | None, float | None, int]]:
    """The guard's reference cell -> its test metric in A and in B, each the median over the
    training seeds both runs measured (``groups``: :func:`_seed_groups`)."""
    return {plain.cell: (stats.percentile([c.accuracy_a for c in cells], 50),
                         stats.percentile([c.accuracy_b for c in cells], 50), len(cells))
            for plain, cells in groups}


def _seed_groups(comparison: Comparison) -> list[SeedGroup]:
    """The guard's reference cells measured with replicates in both runs: (the plain cell,
    it and its ``-initN`` seeds). A cell with a training seed of its own and no plain cell
    beside it (a run made with ``--init-seed``, or without the guard's seeds) is in none: it
    is judged directly."""
    groups: dict[tuple, list[CellComparison]] = {}
    for c in comparison.compared:
        spec = (c.b or c.a).spec
        if spec.is_reference and c.accuracy_a is not None and c.accuracy_b is not None:
            groups.setdefault(spec.comparable_key, []).append(c)
    out = []
    for cells in groups.values():
        plain = [c for c in cells if not (c.b or c.a).spec.is_replicate]
        if plain and len(cells) > 1:
            out.append((plain[0], cells))
    return out


def too_noisy(comparison: Comparison) -> list[CellComparison]:
    """The cells the regression check can neither pass nor fail (undecided)."""
    return [c for c in comparison.compared if c.unchecked]


def missing(comparison: Comparison) -> list[CellComparison]:
    """Cells not measured whole in both runs, but for a crash of the checked run's
    (:func:`failed`): absent from it, skipped where the baseline ran them, or crashed or cut
    short in the baseline (``--allow-missing`` lets these through, listed). (Cells neither
    run measured are not checks.)"""
    def whole(result) -> bool:
        return result is not None and result.whole

    broke = set(map(id, failed(comparison)))
    return [c for c in comparison.cells
            if c.a is not None and (c.a.measured or (c.b is not None and c.b.measured))
            and not (whole(c.a) and whole(c.b)) and id(c) not in broke]


def failed(comparison: Comparison) -> list[CellComparison]:
    """Cells of the checked run a process of which crashed or wrote an error, or that its
    interruption left short of the processes it planned, whatever the baseline did with them
    (measured, skipped, crashed or never ran them): never a pass, whatever is allowed (what
    crashed may be what the change did), as a crash of B's is in an interleaved check. A
    baseline's own crash is :func:`missing`: its run cannot judge the cell."""
    def broke(result) -> bool:
        return result is not None and (result.short or any(r.get("status") == "error" for r in result.repeats))

    return [c for c in comparison.cells if broke(c.b)]


def new(comparison: Comparison) -> list[CellComparison]:
    """Cells the checked run measured that the baseline does not have: nothing to check them
    against (not a failure, and not checked: said so); one the run crashed or cut short is
    :func:`failed` (it had been listed under both)."""
    broke = set(map(id, failed(comparison)))
    return [c for c in comparison.cells if c.a is None and c.b is not None and c.b.measured and id(c) not in broke]


def differing(comparison: Comparison) -> list[CellComparison]:
    """Cells both runs measured, but as different measurements (configuration, data or
    workload code differ): not checked, and said so."""
    return [c for c in comparison.cells if c.differences]


@dataclass(frozen=True)
class CheckOutcome:
    """What the check found, and the exit status it means."""

    failures: list[Regression]
    undecided: list[CellComparison]
    missing: list[CellComparison]
    checked: int
    failed: list[CellComparison] = ()
    allow_undecided: bool = False
    allow_missing: bool = False
    differing: list[CellComparison] = ()
    other_machine: list[tuple[str, object, object]] = ()   # fingerprint fields that differ
    allow_other_machine: bool = False
    new: list[CellComparison] = ()   # only in the checked run: no baseline, not checked
    # The guard's reference cells judged on the median over their training seeds: cell ->
    # (A's, B's, seeds, metric) (the table's rows show each seed's own value).
    over_seeds: dict[str, tuple[float | None, float | None, int, str]] | None = None

    @property
    def exit_status(self) -> int:
        if self.other_machine and not self.allow_other_machine:
            return EXIT_UNDECIDED   # another machine's speed is not a regression of the code
        if self.failures:
            return EXIT_REGRESSION
        if self.failed:
            return EXIT_UNDECIDED   # never allowed through
        unchecked = list(self.missing) + list(self.differing)
        if (self.undecided and not self.allow_undecided) or (unchecked and not self.allow_missing):
            return EXIT_UNDECIDED
        if not self.checked:
            return EXIT_UNDECIDED   # nothing was checked: never a pass
        return EXIT_PASS


def check(comparison: Comparison, accuracy_tolerance: float = DEFAULT_ACCURACY_TOLERANCE,
          allow_undecided: bool = False, allow_missing: bool = False,
          allow_other_machine: bool = False) -> CheckOutcome:
    """The regression check of B against A, failing closed (runs of two machines too,
    unless ``allow_other_machine``)."""
    undecided = too_noisy(comparison)
    checked = len([c for c in comparison.compared if not c.unchecked])
    groups = _seed_groups(comparison)
    medians = seed_medians(groups)
    over_seeds = {plain.cell: (*medians[plain.cell], plain.metric) for plain, _ in groups}
    return CheckOutcome(regressions(comparison, accuracy_tolerance), undecided, missing(comparison), checked,
                        failed(comparison), allow_undecided, allow_missing, differing(comparison),
                        comparison.machine_diff, allow_other_machine, new(comparison), over_seeds)
