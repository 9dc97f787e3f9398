"""Parent side: interleaved A/B comparison, the process pair as the unit.

For each cell, pairs of fresh processes run, one of each side, in lockstep: both at once,
taking turns step by step (:mod:`distbench.trackers.lockstep`; the first turn alternates between
pairs, A B, B A, ...). Whatever the machine does (its speed moved 25-40% between
processes here, and within seconds) falls on both sides of a pair, and the pair's
log-ratio log(median_B / median_A) cancels it. Cells of several local processes (multi-worker)
run their pairs one process after the other instead. From ``min_pairs`` on, the pairs are judged
(:func:`distbench.analysis.compare.judge_pairs`) after each new one until the verdict is decided (``same``, ``slower``,
``faster``), ``max_pairs`` is reached or the budget is spent (``undecided``). A crash fails the cell.

Sides differ in run options (``--intra-op-threads 1``), environment (``TF_ENABLE_ONEDNN_OPTS=0``, in effect from the
worker's start: :mod:`distbench.launchers.process`) or the project's version (``check --against REV`` runs side A
from a git worktree of the project at REV, :mod:`distbench.session.project`). Both sides of a run are stored as one
run: cells ``<id>@A`` and ``<id>@B``, and the pairs and verdicts in ``distbench.interleaved``.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from distbench import strategies
from distbench.analysis import compare, pairs
from distbench.core import stats
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.core.lockstep import ENV, prefix
from distbench.core.records import CellRecord
from distbench.launchers.process import kill_all, resume
from distbench.launchers.relay import Relay
from distbench.session.side import Side, no_difference

# One lockstep pair's log-ratio has an sd of about 0.012 here (A/A; 0.09-0.15 for pairs run
# one after the other): 5% is then resolved in 3-4 pairs (docs/measurements.md).
DEFAULT_THRESHOLD = 0.05
DEFAULT_MIN_PAIRS = 3
DEFAULT_MAX_PAIRS = 8

NOT_COMPARABLE = "not comparable"


class PairsInterrupted(KeyboardInterrupt):
    """Ctrl-C during interleaved pairs; ``cells`` holds what finished."""

    def __init__(self, cells: list["PairedCell"]) -> None:
        super().__init__("interrupted")
        self.cells = cells


@dataclass
class PairedCell:
    """One cell's interleaved pairs and the verdict on them."""

    cell: str
    threshold: float
    spec: CellSpec | None = None
    pairs: list[tuple[CellRecord, CellRecord]] = field(default_factory=list)
    skipped: str = ""      # why the cell cannot run here (a side, or both, skipped it)
    side_specs: dict = field(default_factory=dict)   # each side's spec of the cell, and why it skipped it
    stopped: str = ""      # why pairs stopped before a verdict (budget)
    interrupted: bool = False   # Ctrl-C stopped its pairs: no verdict, whatever the pairs say
    lockstep: bool = False      # its pairs took turns step by step (one process a side; else one after the other)
    min_pairs: int = 0          # fewer complete pairs (the budget spent first) decide nothing
    incomparable: str = ""      # what makes a step on one side another amount of work (not measured)
    apart: str = ""             # why its sides ran one after the other where lockstep was asked for

    def skip(self, pair: tuple[CellRecord, CellRecord] | None = None) -> bool:
        """Whether a side cannot run the cell, as the plan says (``side_specs``) or, after
        ``pair``, as its worker found (a loop that cannot train the model): no more pairs;
        one side only is ``missing``. A worker's skip had run every pair to ``max_pairs``."""
        if (pair is not None and any(r.get("status") == "skipped" for r in pair)
                and all(r.get("status") in ("ok", "skipped") for r in pair)):   # a crash beside it fails the cell
            self.pairs.remove(pair)
            for (name, (spec, _)), r in zip(sorted(self.side_specs.items()), pair):
                if r.get("status") == "skipped":
                    self.side_specs[name] = (spec, r.get("reason", "skipped"))
        reasons = {name: reason for name, (_, reason) in self.side_specs.items() if reason}
        if reasons:
            both = len(reasons) == 2 and len(set(reasons.values())) == 1
            self.skipped = (next(iter(reasons.values())) if both else
                            "; ".join(f"side {name}: {reason}" for name, reason in sorted(reasons.items())))
        return bool(reasons)

    @property
    def input_bound(self) -> bool:
        """Whether most of the cell's processes that measured it were input-bound (their
        records' ``input``): in lockstep a pipeline fills while the partner steps. (One of
        them, as any was, named nearly every check of a cell of 2 ms steps.)"""
        found = [bool(r["input"]["input_bound"]) for pair in self.pairs for r in pair
                 if (r.get("input") or {}).get("input_bound") is not None]
        return 2 * sum(found) > len(found)

    @property
    def failure(self) -> CellRecord | None:
        """The first process that did not finish ok (a crash fails the cell)."""
        return next((r for pair in self.pairs for r in pair if r.get("status") not in ("ok", "skipped")), None)

    @property
    def failed_sides(self) -> set[str]:
        """The sides ("A", "B") a process of which did not finish ok."""
        return {side for pair in self.pairs for side, r in zip("AB", pair) if r.get("status") not in ("ok", "skipped")}

    @property
    def per_example(self) -> bool:
        """The sides' global batches differ (an ab side's): B/A compares the time per example
        (8x the batch in 1.26x the step time had read "slower", exit 1)."""
        batches = [(r.get("batch") or {}).get("global") for pair in self.pairs for r in pair if r.get("status") == "ok"]
        return None not in batches and len(set(batches)) > 1   # the overhead's bare loop records no batch

    @property
    def log_ratios(self) -> list[float]:
        return self._log_ratios(self.per_example)

    @property
    def step_ratio(self) -> float | None:
        """B/A of step times (what lockstep's partners feel), per example or not."""
        found = self._log_ratios(False)
        return math.exp(stats.percentile(found, 50)) if found else None

    def _log_ratios(self, per_example: bool) -> list[float]:
        statistic = self.statistic

        def time(r: CellRecord) -> float:   # a step's, or an example's
            return r["step_time"][statistic] / (r["batch"]["global"] if per_example else 1)

        return [math.log(time(b) / time(a)) for a, b in self.pairs if a.get("status") == "ok" and b.get("status") == "ok"]

    @property
    def statistic(self) -> str:
        """What a process's step time is in the pair's ratio: its median step; its mean step
        where the sides time steps in groups of other sizes (``--steps-per-execution 10`` on
        one side): a median of 10-step means is near the mean, which a skewed step time puts
        some 5% above the median of single steps, so that a side truly 5% faster read ``same``."""
        sizes = {(r.get("steps") or {}).get("steps_per_sample", 1) for pair in self.pairs for r in pair
                 if r.get("status") == "ok"}
        return "mean" if len(sizes) > 1 else "median"

    @property
    def judgement(self) -> compare.PairedJudgement:
        return compare.judge_pairs(self.log_ratios, self.threshold)

    @property
    def one_sided(self) -> bool:
        """Only one side could not run the cell: what the other measured has nothing to meet."""
        return sum(1 for _, reason in self.side_specs.values() if reason) == 1

    @property
    def verdict(self) -> str:
        if self.incomparable:
            return NOT_COMPARABLE
        if self.skipped:
            return "missing" if self.one_sided else "skipped"
        if self.failure:
            return "failed"
        if self.interrupted:
            return "interrupted"
        if len(self.log_ratios) < self.min_pairs:   # --budget spent first: 2 close pairs had read "same"
            return compare.UNDECIDED
        return self.judgement.verdict

    @property
    def whole(self) -> bool:
        """As many complete pairs as asked for (``--min-pairs``), one at least: their test metrics can be read."""
        return len(self.log_ratios) >= max(self.min_pairs, 1)

    @property
    def decided(self) -> bool:
        return self.verdict in ("same", "slower", "faster", "failed", "skipped", "missing", NOT_COMPARABLE)

    # -- how well each side learned -----------------------------------------------------

    @property
    def metric(self) -> tuple[str, str] | None:
        """The guard's test metric and which way is better (``("accuracy", "higher")``), from
        the first record that has one; None for a cell that does not train (matmul)."""
        found = next((r["accuracy"] for pair in self.pairs for r in pair if r.get("accuracy")), None)
        return (found.get("guard_metric", "accuracy"), found.get("guard_direction", "higher")) if found else None

    def _metric_values(self) -> list[tuple[float | None, float | None]]:
        """Each whole pair's test metric, A's and B's (a training seed each: :func:`pair_spec`)."""
        return [tuple(((r.get("accuracy") or {}).get("test") or {}).get(self.metric[0]) for r in pair)
                for pair in self.pairs if all(r.get("status") == "ok" for r in pair)] if self.metric else []

    def metric_of(self, k: int) -> float | None:
        """Side k's (0: A, 1: B) mean test metric over its whole pairs, as the cells' tables show it."""
        values = [v[k] for v in self._metric_values() if v[k] is not None]
        return sum(values) / len(values) if values else None

    def accuracy(self, tolerance: float) -> pairs.MetricJudgement:
        """How B learned against A, the pair the unit (:func:`distbench.analysis.pairs.judge_metric`);
        nothing judged for a cell that failed or was interrupted, whose verdict is that, nor for
        one with fewer whole pairs than asked for (a budget spent after one seed's pair)."""
        if self.verdict in ("failed", "interrupted") or self.metric is None or not self.whole:
            return pairs.MetricJudgement("")
        found = pairs.judge_metric(self._metric_values(), self.metric[1], tolerance, self.metric[0])
        # Other test examples say nothing of B's model, unless it lost beyond the tolerance (never let by).
        return found if found.verdict == pairs.WORSE or not pairs.examples_differ(self.pairs) else \
            pairs.MetricJudgement(pairs.OTHER_EXAMPLES)

    def less_accurate(self, tolerance: float) -> bool:
        return self.accuracy(tolerance).verdict == pairs.WORSE

    def accuracy_undecided(self, tolerance: float) -> bool:
        return self.accuracy(tolerance).verdict == compare.UNDECIDED

    def accuracy_not_comparable(self, tolerance: float) -> bool:
        return self.accuracy(tolerance).verdict == pairs.OTHER_EXAMPLES

    def as_dict(self, tolerance: float = compare.DEFAULT_ACCURACY_TOLERANCE) -> dict:
        j = self.judgement
        return {"cell": self.cell, "verdict": self.verdict, "threshold": self.threshold, "pairs": j.pairs,
                "log_ratios": self.log_ratios, "ratio": j.ratio, "interval": list(j.interval) if j.interval else None,
                "p_value": j.p_value, "smallest_p": j.smallest_p, "skipped": self.skipped, "stopped": self.stopped,
                "interrupted": self.interrupted, "not_comparable": self.incomparable or None,
                "failure": (self.failure or {}).get("reason"), "lockstep": self.lockstep,
                "metric": self.metric[0] if self.metric else None, "metric_a": self.metric_of(0),
                "metric_b": self.metric_of(1), "metric_direction": self.metric[1] if self.metric else None,
                **self._judged_accuracy(tolerance)}

    def _judged_accuracy(self, tolerance: float) -> dict:
        """:meth:`accuracy` for the stored run, None where the tolerance cannot judge the metric
        (the verdict refuses it once the run is saved: the pairs are not lost)."""
        try:
            found = self.accuracy(tolerance)
        except UserError:
            return {"less_accurate": None, "accuracy": None}
        interval = found.b_minus_a_interval   # stored as B - A, in the metric's units
        return {"less_accurate": found.verdict == pairs.WORSE, "accuracy": found.verdict or None,
                "metric_differences": list(found.b_minus_a) or None,
                "metric_interval": list(interval) if interval else None}


def _single_process(spec: CellSpec) -> bool:
    """Lockstep is for cells of one worker process: not local clusters, and not a task of a
    real one (TF_CONFIG, SLURM), whose two sides would take the same task's address at once."""
    adapter = strategies.for_spec(spec)
    return adapter.local_processes() == 1 and not adapter.across_processes


Launch = Callable[[CellSpec, Side], CellRecord]


def through(suite) -> Launch:
    """The usual launch: ``suite`` runs a side's spec with its environment, code and folder."""
    return lambda spec, side: suite.run(spec, side.worker_env, side.tree, side.task)


@dataclass
class Interleaved:
    """Runs cells as interleaved pairs of two sides until each is decided."""

    a: Side
    b: Side
    launch: Launch
    threshold: float = DEFAULT_THRESHOLD
    min_pairs: int = DEFAULT_MIN_PAIRS
    max_pairs: int = DEFAULT_MAX_PAIRS
    budget_s: float | None = None
    progress: Callable[[PairedCell, CellRecord, CellRecord], None] | None = None
    lockstep: bool = True      # the pair's processes take turns step by step (distbench.trackers.lockstep)
    accuracy_tolerance: float | None = None   # pairs go on while it decides nothing (None: speed alone)
    speed: bool = True   # pairs go on while the speed is undecided (bisect --find less-accurate: not)

    def __post_init__(self) -> None:
        pairs.check_pairs(self.min_pairs, self.max_pairs, self.threshold)

    def run(self, cells: list[CellSpec], skip_reason: Callable[[CellSpec], str | None]) -> list[PairedCell]:
        """Each cell in turn, pair by pair (the budget, when set, covers them all). Ctrl-C
        kills the pair in flight and raises :class:`PairsInterrupted` with the pairs that
        finished (the cell in progress marked interrupted; cells not started left out)."""
        deadline = time.monotonic() + self.budget_s if self.budget_s else None
        done: list[PairedCell] = []
        for spec in distinct(cells, self.a, self.b):
            cell = PairedCell(pair_id(spec, self.a, self.b, {c.cell for c in done}), self.threshold, spec,
                              min_pairs=self.min_pairs)
            try:
                self._cell(cell, spec, skip_reason, deadline)
            except KeyboardInterrupt:
                cell.interrupted = True
                cell.stopped = f"interrupted (Ctrl-C) after {_pairs(len(cell.pairs))}"
                raise PairsInterrupted(done + [cell]) from None
            done.append(cell)
        return done

    def _cell(self, cell: PairedCell, spec: CellSpec, skip_reason, deadline: float | None) -> PairedCell:
        specs = {side.name: side.spec(spec) for side in (self.a, self.b)}
        cell.side_specs = {name: (found, skip_reason(found)) for name, found in specs.items()}
        cell.skipped = no_difference(self.a, self.b, *specs.values())   # an option this cell does not read: alike
        if cell.skipped or cell.skip():
            return cell
        if self.a.of_version or self.b.of_version:   # ab's sides differ in what the user asked for
            cell.incomparable = pairs.other_work(*(specs[side.name] for side in (self.a, self.b)))
            if cell.incomparable:
                return cell
        steps = pairs.other_work(*(specs[side.name] for side in (self.a, self.b)), pairs.STEP_COUNT)   # in lockstep: one alone
        if not _single_process(spec):
            cell.apart = "train across processes"
        elif steps:
            cell.apart = f"take other numbers of steps ({steps})"
        cell.lockstep = self.lockstep and not cell.apart
        while len(cell.pairs) < self.max_pairs:
            if deadline and time.monotonic() > deadline:
                cell.stopped = f"time budget of {self.budget_s:g} s spent after {_pairs(len(cell.pairs))}"
                break
            cell.pairs.append(self._pair(spec, len(cell.pairs), cell.lockstep))
            if cell.skip(cell.pairs[-1]):
                break
            if self.progress:
                self.progress(cell, *cell.pairs[-1])
            if cell.failure or (len(cell.pairs) >= self.min_pairs and (cell.decided or not self.speed)
                                and not (self.accuracy_tolerance is not None
                                         and cell.accuracy_undecided(self.accuracy_tolerance))):
                break
        return cell

    def _pair(self, spec: CellSpec, k: int, lockstep: bool) -> tuple[CellRecord, CellRecord]:
        """Pair k: A first when k is even, B first when odd (A B B A A B ...); in lockstep,
        both processes at once, taking turns step by step; else one after the other. Both
        sides train with the pair's seed (:func:`pair_spec`), counted from a side's own where it
        sets one (``--init-seed 2``: every pair had trained seed 2, three copies of one
        comparison read as three pairs, an interval of width 0)."""
        specs = {side.name: pair_spec(side.spec(spec), k) for side in (self.a, self.b)}
        order = (self.a, self.b) if k % 2 == 0 else (self.b, self.a)
        if lockstep:
            records = self._lockstep(specs, order)
        else:
            records = {side.name: self.launch(specs[side.name], side) for side in order}
        return records[self.a.name], records[self.b.name]

    def _lockstep(self, specs: dict[str, CellSpec], order: tuple[Side, Side]) -> dict[str, CellRecord]:
        records: dict[str, CellRecord] = {}
        errors: list[BaseException] = []

        def run(side: Side, env: dict) -> None:
            try:
                records[side.name] = self.launch(specs[side.name], side.with_env(env))
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                errors.append(exc)

        with tempfile.TemporaryDirectory(prefix="distbench-pair-") as folder:
            relay = Relay(folder, [side.name for side in order])
            threads = {}
            for side in order:
                env = {**side.worker_env, ENV: prefix(folder, side.name)}
                threads[side.name] = threading.Thread(target=run, args=(side, env), daemon=True)
                threads[side.name].start()
            try:
                relay.run(lambda name: threads[name].is_alive())
            except KeyboardInterrupt:
                kill_all()   # the pair in flight is abandoned: its workers go now, not at their deadline
                for thread in threads.values():
                    thread.join()
                resume()
                raise
            finally:
                for thread in threads.values():
                    thread.join()
                relay.close()
        if errors:
            raise errors[0]
        return relay.blame(records)


def pair_spec(spec: CellSpec, k: int) -> CellSpec:
    """Pair k's cell: both sides train with training seed ``seed + k`` (weights and shuffle
    order; the data is the same): the same code learns the same in a pair, and a change is
    judged over as many seeds as pairs, not one seed's luck (accuracy sd 0.030 over 5 seeds in
    run e3e5cf/0003: two seeds differ the bad way by more than 0.05 one time in six to eight)."""
    return spec if k == 0 else spec.replace(init_seed=spec.training_seed + k)


def distinct(cells: list[CellSpec], a: Side, b: Side) -> list[CellSpec]:
    """The cells whose two sides are not those of an earlier cell: when the sides set what
    tells cells apart (``--keras`` on each, where the plan has a cell per flavour), each
    comparison runs once, under the first cell's id, not once per cell it was made from."""
    seen, kept = set(), []
    for spec in cells:
        key = (a.spec(spec), b.spec(spec))   # specs are frozen: equal fields, equal keys
        if key not in seen:
            seen.add(key)
            kept.append(spec)
    return kept


def pair_id(spec: CellSpec, a: Side, b: Side, taken=()) -> str:
    """The planned cell's id with the Keras flavour both sides ran, or none where they differ (the
    plan's ``-tf_keras`` under ``TF_USE_LEGACY_KERAS=1`` had named sides that ran Keras 3); the
    plan's own where an earlier comparison took it (one side pinned, both flavours planned)."""
    flavours = {a.spec(spec).keras, b.spec(spec).keras}
    found = spec.replace(keras=flavours.pop() if len(flavours) == 1 else "keras3").id
    return spec.id if found in taken else found


def _pairs(n: int) -> str:
    return f"{n} pair{'s' * (n != 1)}"   # "after 1 pairs"
