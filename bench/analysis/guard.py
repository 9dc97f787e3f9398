"""The accuracy guard: does a cell learn as well as the reference cell?

The metric is the workload's ``guard_metric``: test accuracy for Reuters, AUC for the
binary multibranch model (whose accuracy at a fixed 0.5 threshold swings with calibration),
an error such as MAE for a regression model, for which lower is better: a cell is flagged
only on its metric's bad side.

For one workload, data, data seed and training length, every loop under every strategy
should reach comparable test accuracy; a fast strategy that learns worse is not faster
(tensorflow/tensorflow#33809). The reference is the ``default`` strategy's ``fit``. Its
normal spread comes from replicates that differ only in their training seed (weight
initialisation and shuffle order, ``init_seed``), not in their data. A cell whose mean
test accuracy lies outside ``mean ± max(K x sd, FLOOR)`` of the replicates is flagged.

Pure: records in, judgements out. :func:`replicates` says which reference cells a run
needs; :func:`apply` writes each cell's judgement into its records.
"""

from __future__ import annotations

from dataclasses import dataclass

from distbench.core import stats
from distbench.core.config import CellSpec
from distbench.storage.results import CellResult

# The band is a 95% prediction interval for one new seed's value: mean ± t(0.975, n - 1)
# x sd x sqrt(1 + 1/n) (a correct cell, which trains like another seed, falls below it
# 2.5% of the time). Its width falls fast with seeds: 4.97 sd at 3 seeds, 3.04 at 5. Never
# narrower than FLOOR: the quick profile's test set (2,246 Reuters examples) has a
# binomial standard error of ~0.01 that a few seeds can under-state.
DEFAULT_SEEDS = 5
CONFIDENCE = 0.95
FLOOR = 0.02
# The smallest drop of the guard's metric worth catching. A band wider than this cannot
# flag a cell that learns that much worse: its cells read "underpowered", not "ok".
POWER = 0.05
REFERENCE = ("default", "fit")   # CellSpec.is_reference
# A lower-is-better metric (an error or a loss, in the data's units: a diabetes MAE of 40 to
# 60) has FLOOR and POWER as shares of the reference's mean instead; a higher-is-better one
# (accuracy, AUC: shares already) as they are.


@dataclass(frozen=True)
class Reference:
    """The reference cell's test accuracy over training seeds."""

    cell: str
    seeds: tuple[int, ...]
    values: tuple[float, ...]      # mean test accuracy of each seed's repeats
    direction: str = "higher"      # which way is better for the guard's metric
    chance: float | None = None    # what answering without learning scores: the majority class's share, AUC 0.5

    @property
    def scale(self) -> float:
        """The unit of FLOOR and POWER: 1 for a share, the reference's mean for an error."""
        return abs(self.mean) if self.direction == "lower" else 1.0

    @property
    def mean(self) -> float:
        return stats.mean(self.values)

    @property
    def sd(self) -> float:
        return stats.stdev(self.values)

    @property
    def half_width(self) -> float:
        return max(stats.prediction_half_width(self.values, CONFIDENCE), FLOOR * self.scale)

    @property
    def smallest_drop(self) -> float:
        """How far the wrong way from the reference's mean a cell must go to be flagged."""
        return self.half_width

    @property
    def powered(self) -> bool:
        return self.half_width <= POWER * self.scale

    @property
    def at_chance(self) -> bool:
        """The reference itself learned nothing worth the name: its mean is within FLOOR of
        chance (shuffled or constant labels, a model that cannot fit), so that every cell
        inside its band, one that learns nothing included, would read "ok"."""
        return self.chance is not None and self.direction == "higher" and self.mean <= self.chance + FLOOR

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def as_dict(self) -> dict:
        return {"cell": self.cell, "seeds": list(self.seeds), "values": list(self.values), "mean": self.mean,
                "sd": self.sd, "low": self.low, "high": self.high, "half_width": self.half_width,
                "smallest_drop": self.smallest_drop, "power": POWER, "powered": self.powered,
                "confidence": CONFIDENCE, "floor": FLOOR, "direction": self.direction, "scale": self.scale,
                "chance": self.chance, "at_chance": self.at_chance}


def with_replicates(cells: list[CellSpec], seeds: int = DEFAULT_SEEDS) -> list[CellSpec]:
    """``cells`` with the replicates they need, each after the last cell of its workload."""
    extra = replicates(cells, seeds)
    last = {cell.workload: k for k, cell in enumerate(cells)}
    out: list[CellSpec] = []
    for k, cell in enumerate(cells):
        out.append(cell)
        if last[cell.workload] == k:
            out += [r for r in extra if r.workload == cell.workload]
    return out


def replicates(cells: list[CellSpec], seeds: int = DEFAULT_SEEDS) -> list[CellSpec]:
    """The reference replicates the training cells of ``cells`` need and do not include.

    Replicate 0 is the plain reference cell (training seed = data seed); replicate k
    has ``init_seed = seed + k``. ``seeds < 2`` turns the guard off (no spread to estimate).
    """
    if seeds < 2:
        return []
    have = {c.id for c in cells}
    needed: dict[str, CellSpec] = {}
    for cell in cells:
        if cell.loop is None:
            continue   # matmul does not learn
        base = cell.plain(*REFERENCE)
        for k in range(seeds):
            spec = base if k == 0 else base.replace(init_seed=base.seed + k)
            if spec.id not in have:
                needed.setdefault(spec.id, spec)
    return list(needed.values())


def references(results: dict[str, CellResult]) -> dict[tuple, Reference]:
    """Each comparable group's reference, from the run's reference cells (any seed)."""
    by_key: dict[tuple, dict[int, float]] = {}
    names: dict[tuple, str] = {}
    directions: dict[tuple, str] = {}
    chances: dict[tuple, float | None] = {}
    for cell, result in results.items():
        value, spec = result.guard_value, result.spec
        if value is None or not spec.is_reference:
            continue
        key = spec.comparable_key
        by_key.setdefault(key, {})[spec.training_seed] = value
        directions[key] = result.guard_direction
        chances[key] = chance(result)
        if not spec.is_replicate or key not in names:
            names[key] = cell
    return {
        key: Reference(names[key], tuple(sorted(values)), tuple(values[s] for s in sorted(values)), directions[key],
                       chances[key])
        for key, values in by_key.items()
    }


def chance(result: CellResult) -> float | None:
    """What a model that learned nothing scores on ``result``'s guard metric: accuracy, the
    test set's majority-class share (when its data stored it); AUC, 0.5; else None (an
    error such as MAE has no such floor the records keep)."""
    metric = result.guard_metric
    if metric.endswith("accuracy"):
        return result.majority_share
    return 0.5 if metric == "auc" else None


def judge(result: CellResult, refs: dict[tuple, Reference]) -> dict | None:
    """The guard's judgement of one cell (None for cells that do not train or did not run)."""
    value = result.guard_value
    if value is None or result.spec.is_target:
        return None   # a time-to-target cell stops at its target: its final metric is not comparable
    ref = refs.get(result.spec.comparable_key)
    if result.spec.scaling == "weak" and (result.replicas or 1) > 1:
        return _unguarded(value, "weak scaling: its global batch differs from the reference's")
    if ref is None:
        return _unguarded(value, "no reference cell (default fit) with the same data and length in this run")
    if len(ref.values) < 2:
        return _unguarded(value, f"the reference ran with one seed only ({ref.cell}); its spread is unknown")
    status = "low" if value < ref.low else "high" if value > ref.high else "ok" if ref.powered else "underpowered"
    if ref.at_chance and status in ("ok", "underpowered"):
        status = "chance"   # inside a band that learning nothing is inside: not judged, not "ok" (below it: LOW)
    return {"status": status, "metric": result.guard_metric, "value": value, "reference": ref.as_dict(),
            "worse": status == ("low" if ref.direction == "higher" else "high")}


def worse(judgement: dict) -> bool:
    """Whether a judgement puts the cell outside the band on its metric's bad side (below for
    accuracy, above for an error); judgements stored before directions were kept: below."""
    return bool(judgement.get("worse", judgement.get("status") == "low"))


def _unguarded(value: float, why: str) -> dict:
    return {"status": "unguarded", "value": value, "reference": None, "why": why}


def apply(results: dict[str, CellResult]) -> dict[str, dict]:
    """Judges every cell and stores the judgement in its ok records; returns cell -> judgement."""
    refs = references(results)
    verdicts = {}
    for cell, result in results.items():
        judgement = judge(result, refs)
        if judgement is None:
            continue
        verdicts[cell] = judgement
        for record in result.ok:
            record["accuracy_guard"] = judgement
    return verdicts


def power(results: dict[str, CellResult]) -> list[Reference]:
    """Each reference of the run (one per workload and training length): what it can flag."""
    return list(references(results).values())


def flagged(results: dict[str, CellResult]) -> dict[str, dict]:
    """The cells whose stored judgement is outside the reference's band on the bad side
    (a cell that learns better than every seed of the reference is shown, not flagged)."""
    return {cell: r.guard for cell, r in results.items() if worse(r.guard)}
