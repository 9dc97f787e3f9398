"""Interleaved pairs read: the outcome of an interleaved comparison (its exit status,
failing closed) and each cell's pair noise from stored interleaved runs. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass

from distbench.analysis import compare
from distbench.analysis.tolerance import check_tolerance
from distbench.core import stats, targets
from distbench.core.config import ONE_REPLICA, WORK_FIELDS, CellSpec
from distbench.core.errors import UserError


# Another number of steps leaves one side of a lockstep pair stepping alone, on a quieter
# machine, once the other has ended (epochs 4 against 1 read "slower", 1.43x, for one model).
STEP_COUNT = WORK_FIELDS[2:]


@dataclass(frozen=True)
class PairedOutcome:
    """What an interleaved comparison found, and the exit status it means (fail closed)."""

    cells: list
    allow_undecided: bool = False
    allow_missing: bool = False
    accuracy_tolerance: float = compare.DEFAULT_ACCURACY_TOLERANCE
    dropped: tuple = ()   # what the revision's matrix file selects and this tree's does not: measured on neither side

    def having(self, verdict: str) -> list:
        return [c for c in self.cells if c.verdict == verdict]

    @property
    def less_accurate(self) -> list:
        """Cells whose side B learned worse than A beyond the tolerance, whatever their speed
        (pair k trains both sides with training seed k): a regression too."""
        return [c for c in self.cells if c.less_accurate(self.accuracy_tolerance)]

    @property
    def accuracy_undecided(self) -> list:
        """Cells whose pairs can tell neither that B learned as well as A, within the
        tolerance, nor that it did not (a process's metric varies more than the tolerance)."""
        return [c for c in self.cells if c.accuracy_undecided(self.accuracy_tolerance)]

    @property
    def accuracy_not_comparable(self) -> list:
        """Cells whose sides measured their test metrics on other test examples (a change to
        ``data()``, to the data folder, or to the output synthetic labels follow)."""
        return [c for c in self.cells if c.accuracy_not_comparable(self.accuracy_tolerance)]

    @property
    def crashed_b(self) -> list:
        """Cells a process of side B of which crashed or wrote an error."""
        return [c for c in self.having("failed") if "B" in c.failed_sides]

    @property
    def working_tree_code(self) -> list:
        """Cells a version's worker of which ran the working tree's code (an editable install):
        its side measured nothing of its own, so --allow-missing does not let it through."""
        return [c for c in self.having("failed")
                if any(r.get("error_kind") == "working_tree" for pair in c.pairs for r in pair)]

    @property
    def decided(self) -> int:
        return len([c for c in self.cells if c.verdict in ("same", "slower", "faster")])

    @property
    def exit_status(self) -> int:
        if self.having("slower") or self.less_accurate:
            return compare.EXIT_REGRESSION
        if self.crashed_b or self.working_tree_code:
            return compare.EXIT_UNDECIDED   # never let through: what crashed B may be what the change did
        # One side could not run the cell (a loop or a device it lacks), or only A crashed (the
        # base's model cannot be built any more): --allow-missing lets these through, listed.
        # Or the versions' matrix files set another batch: their steps are not the same work.
        missing = (self.having("missing") + self.having("not comparable") + list(self.dropped)
                   + [c for c in self.having("failed") if c not in self.crashed_b] + self.accuracy_not_comparable)
        undecided = self.having("undecided") + self.accuracy_undecided
        if (undecided and not self.allow_undecided) or (missing and not self.allow_missing):
            return compare.EXIT_UNDECIDED
        return compare.EXIT_PASS if self.decided else compare.EXIT_UNDECIDED


def check_pairs(min_pairs: int, max_pairs: int, threshold: float) -> None:
    """UserError for pair counts or a band no verdict can come from."""
    if not 2 <= min_pairs <= max_pairs:
        raise UserError(f"Pairs must satisfy 2 <= --min-pairs <= --max-pairs; received {min_pairs} and {max_pairs}.")
    if threshold <= 0:
        raise UserError(f"Threshold must be > 0 (a relative change, 0.05 = 5%); received {threshold}.")


WORSE, WITHIN = "worse", "within"
OTHER_EXAMPLES = "not comparable"   # the sides' test metrics were measured on other test examples


def examples_differ(pairs, key: str = "test_fingerprint") -> str:
    """How the sides' examples differ (``"A 3ccd968b4006, B 35dc0844d3ce"``) in the first
    whole pair whose records both hash them (``data[key]``: ``test_fingerprint``, or
    ``fingerprint`` for train and test) and disagree; "" where none does. Both sides of a
    pair load their data with the cell's seed: examples that differ are another data(),
    data folder or model output, or a data() that differs from one process to the next."""
    for pair in _whole(pairs):
        a, b = (_hash(r, key) for r in pair)
        if a and b and a != b:
            return f"A {a[:12]}, B {b[:12]}"
    return ""


def examples_vary(pairs, key: str = "test_fingerprint") -> dict[str, str]:
    """Each side whose own processes hashed other examples from one another, with the first
    two it hashed (``{"A": "3ccd968b4006, 9a1e0c77d2b1"}``); empty where each side's whole pairs
    agree. Every pair loads its data with the cell's seed (:func:`distbench.session.interleave.
    pair_spec` varies the training seed alone), so such a side's data() is not the same from
    one process to the next: its test metrics say nothing of its model, whatever the other did."""
    whole, found = _whole(pairs), {}
    for k, side in enumerate("AB"):
        seen = [h for h in dict.fromkeys(_hash(pair[k], key) for pair in whole) if h]
        if len(seen) > 1:
            found[side] = f"{seen[0][:12]}, {seen[1][:12]}"
    return found


def examples_hashed(pairs) -> bool:
    """Whether every whole pair's records both hash their test examples (a pipeline function's
    are not hashed, and records of workers older than the hash have none)."""
    whole = _whole(pairs)
    return bool(whole) and all(_hash(r, "test_fingerprint") for pair in whole for r in pair)


def _whole(pairs) -> list:
    """The pairs both of whose processes ran to the end (``ok``)."""
    return [pair for pair in pairs if all(r.get("status") == "ok" for r in pair)]


def _hash(record: dict, key: str) -> str | None:
    return (record.get("data") or {}).get(key)


@dataclass(frozen=True)
class MetricJudgement:
    """How side B's test metric compares with A's over a cell's whole pairs, pair k one
    training seed on both sides: each pair's B - A (signed so that below 0 is worse), the
    interval of their mean, the loss that is a regression (the tolerance in the metric's
    units) and the verdict: ``worse``, ``within``, ``undecided`` or ``""`` (nothing to judge)."""

    verdict: str
    differences: tuple[float, ...] = ()
    interval: tuple[float, float] | None = None
    limit: float = 0.0
    sign: float = 1.0   # -1 for a lower-is-better metric: a difference's sign against B - A's

    @property
    def b_minus_a(self) -> tuple[float, ...]:
        """Each pair's B - A in the metric's units (what is shown and stored)."""
        return tuple(self.sign * d for d in self.differences)

    @property
    def b_minus_a_interval(self) -> tuple[float, float] | None:
        return tuple(sorted(self.sign * x for x in self.interval)) if self.interval else None


def judge_metric(values: list[tuple[float | None, float | None]], direction: str, tolerance: float,
                 metric: str = "") -> MetricJudgement:
    """The pair as the unit, as for speed: B is ``worse`` when the interval of the pairs'
    mean difference lies beyond the tolerance, ``within`` when it reaches no further, else
    ``undecided``. Where a process's metric is reproducible the differences are the change's
    own (identical sides: 0 in every pair); where it is not (a parameter-server cell's
    accuracy spread 0.276 to 0.409 over one side's processes) the interval holds that
    spread, and identical sides had read LESS ACCURATE on their medians. A side that gave
    no value of A's metric at all is worse: no number is not "no loss"."""
    check_tolerance(tolerance, direction, metric)
    if any(a is not None for a, _ in values) and all(b is None for _, b in values):
        return MetricJudgement(WORSE)
    both = [(a, b) for a, b in values if a is not None and b is not None]
    if not both:
        return MetricJudgement("")
    sign, limit = 1.0, tolerance
    if direction == "lower":   # the tolerance is a share of A's value
        sign, limit = -1.0, tolerance * abs(stats.percentile([a for a, _ in both], 50))
    differences = tuple(sign * (b - a) for a, b in both)
    if len(differences) == 1:
        return MetricJudgement(WORSE if differences[0] < -limit else WITHIN, differences, None, limit, sign)
    lo, hi = stats.mean_interval(differences, compare.CONFIDENCE)
    if direction != "lower" and any(word in metric.lower() for word in targets.SHARES):
        lo, hi = max(lo, -1.0), min(hi, 1.0)   # a share's difference: no further than its range (the verdict alike)
    verdict = WORSE if hi < -limit else WITHIN if lo >= -limit else compare.UNDECIDED
    return MetricJudgement(verdict, differences, (lo, hi), limit, sign)


def outcome(cells: list, allow_undecided: bool = False, allow_missing: bool = False,
            accuracy_tolerance: float | None = None, dropped: tuple = ()) -> PairedOutcome:
    tolerance = compare.DEFAULT_ACCURACY_TOLERANCE if accuracy_tolerance is None else accuracy_tolerance
    return PairedOutcome(cells, allow_undecided, allow_missing, tolerance, tuple(dropped))


# Sides whose steps differ more than this in lockstep: the lighter side's steps are slowed by
# its heavy partner (0.58 ms alone, 1.39 ms beside a 9.3 ms partner: B/A 6.6 in lockstep
# against 15.7 with --no-lockstep, a user's project), so the ratio understates the change.
UNEVEN = 2.0


@dataclass(frozen=True)
class PairNoise:
    """The spread of one pair's log-ratio for a cell, from stored interleaved runs."""

    sd: float
    pairs: int
    runs: int
    seconds_per_pair: float | None
    lockstep: bool = True   # the mode of the pairs it is from (a cell across processes has only the other)


def pair_noise(history, lockstep: bool = True) -> dict[str, PairNoise]:
    """Each cell's pair noise: the pooled spread of pairs' log-ratios around their run's
    mean, over a machine's stored interleaved runs (runs with at least 2 pairs), from the
    pairs run as ``lockstep`` asks (a lockstep pair's sd was 0.052 where one after the other
    was 0.221, a user's cell; pooled, 0.107); a cell with none of that mode (across
    processes, never in lockstep) from those of the other, which its row names. A cell
    stored before its mode was recorded has its run's (``interleaved.lockstep``), else
    counts as lockstep, the default (runs before lockstep existed included). A run whose
    sides differ more than :data:`UNEVEN` times (a check that found a model 21.8x slower:
    pair sd 0.42, against 0.03 for the unchanged tree) is left out: plan sizes the search for
    a small change, and such runs had made it ask for six times the pairs. So is tune's
    confirmation (stored under plain fit's id, its side B another configuration)."""
    by_mode: dict[bool, dict[str, PairNoise]] = {mode: _pooled(history, mode) for mode in (True, False)}
    wanted, other = by_mode[lockstep], by_mode[not lockstep]
    return {**{c: n for c, n in other.items() if c not in wanted}, **wanted}


def _pooled(history, lockstep: bool) -> dict[str, PairNoise]:
    squares: dict[str, list[float]] = {}
    dof: dict[str, int] = {}
    runs: dict[str, int] = {}
    walls: dict[str, list[float]] = {}
    for run in history:
        if run.interleaved.get("tune"):
            continue   # tune's confirmation, plain fit against another configuration under fit's id: not fit's noise
        for cell, found in run.interleaved.get("cells", {}).items():
            ratios = found.get("log_ratios") or []
            if len(ratios) < 2 or found.get("lockstep", run.interleaved.get("lockstep", True)) != lockstep:
                continue
            m = stats.mean(ratios)
            if abs(m) > math.log(UNEVEN) or _stored_other_work(run, cell):
                continue   # sides of other work (B/A 21.8: pair sd 0.42 against 0.03 unchanged): not a small change's noise
            squares.setdefault(cell, []).extend((r - m) ** 2 for r in ratios)
            dof[cell] = dof.get(cell, 0) + len(ratios) - 1
            runs[cell] = runs.get(cell, 0) + 1
            walls.setdefault(cell, []).extend(_pair_walls(run, cell))
    return {c: PairNoise(math.sqrt(sum(squares[c]) / dof[c]), len(squares[c]), runs[c],
                         sum(walls[c]) / len(walls[c]) if walls.get(c) else None, lockstep) for c in squares}


def _sides(run, cell: str) -> list:
    """A stored interleaved cell's two sides (``<id>@A``, ``<id>@B``; None where missing)."""
    return [run.results.get(f"{cell}@{s}") for s in ("A", "B")]


def other_work(a: CellSpec, b: CellSpec, fields: tuple[str, ...] = WORK_FIELDS) -> str:
    """How the two sides' steps of a cell are other amounts of work (a training setting, which
    matmul does not read, and weak scaling only where there may be several replicas); empty
    when they are not. Pairs of other work (an ab of --global-batch 32 against 256) are no
    verdict of a change, nor the cell's noise."""
    if a.loop is None:
        return ""
    return "; ".join(f"{name} A {getattr(a, name)}, B {getattr(b, name)}" for name in fields
                     if getattr(a, name) != getattr(b, name) and not (name == "scaling" and a.strategy in ONE_REPLICA))


def _stored_other_work(run, cell: str) -> bool:
    """Whether a stored interleaved cell's sides ran other amounts of work (:func:`other_work`)."""
    sides = _sides(run, cell)
    return all(side and side.repeats for side in sides) and bool(other_work(*(side.spec for side in sides)))


def _pair_walls(run, cell: str) -> list[float]:
    """Seconds per pair (both processes, start-up included) in a stored interleaved run."""
    sides = _sides(run, cell)
    if not all(sides):
        return []
    walls = [[r.get("process_wall_s") for r in side.ok] for side in sides]
    return [a + b for a, b in zip(*walls) if a and b]


MOST_PAIRS = 10_000   # a plan beyond this says "more than", not a count it did not reach


@dataclass(frozen=True)
class PairPlan:
    """How many interleaved pairs a cell needs to catch an effect (None: it never can, the
    effect does not exceed the band, or more than :data:`MOST_PAIRS`), and about how long."""

    cell: str
    noise: PairNoise
    pairs: int | None
    minutes: float | None


def plan(noise: dict[str, PairNoise], cells: list[str], effect: float, threshold: float,
         power: float) -> list[PairPlan]:
    """For each of ``cells``: the pairs it takes to catch ``effect`` beyond ``threshold`` at ``power``."""
    out = []
    for cell in cells:
        n = noise[cell]
        try:
            needed = stats.pairs_to_detect(n.sd, effect, threshold, power=power, most=MOST_PAIRS)
        except ValueError:
            needed = None
        minutes = needed * n.seconds_per_pair / 60 if needed and n.seconds_per_pair else None
        out.append(PairPlan(cell, n, needed, minutes))
    return out
