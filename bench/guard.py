"""The accuracy guard: does a cell learn as well as the reference cell?

The metric is the workload's ``guard_metric``: test accuracy for Reuters, AUC for the
binary multibranch model (whose accuracy at a fixed 0.5 threshold swings with calibration).

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

from bench import records, stats
from bench.config import CellSpec

DEFAULT_SEEDS = 3
# Three standard deviations of the replicates, but never narrower than two points of
# accuracy: with three seeds the standard deviation itself is uncertain, and the quick
# profile's test set (2,246 Reuters examples) has a binomial standard error of ~0.01.
K = 3.0
FLOOR = 0.02
REFERENCE = ("default", "fit")


@dataclass(frozen=True)
class Reference:
    """The reference cell's test accuracy over training seeds."""

    cell: str
    seeds: tuple[int, ...]
    values: tuple[float, ...]      # mean test accuracy of each seed's repeats

    @property
    def mean(self) -> float:
        return stats.mean(self.values)

    @property
    def sd(self) -> float:
        return stats.stdev(self.values)

    @property
    def half_width(self) -> float:
        return max(K * self.sd, FLOOR)

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def as_dict(self) -> dict:
        return {"cell": self.cell, "seeds": list(self.seeds), "values": list(self.values), "mean": self.mean,
                "sd": self.sd, "low": self.low, "high": self.high, "k": K, "floor": FLOOR}


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


def _key(config: dict) -> tuple:
    """What must match for two cells' accuracies to be comparable."""
    return tuple(config.get(k) for k in ("workload", "data", "seed", "epochs", "steps_per_epoch", "global_batch",
                                          "eval_examples", "profile"))


def _is_reference(config: dict) -> bool:
    return ((config.get("strategy"), config.get("loop")) == REFERENCE and config.get("steps_per_execution", 1) == 1
            and not config.get("jit_compile") and config.get("scaling", "strong") == "strong")


def metric(record: dict) -> str:
    """The test metric the guard compares for this record's workload (accuracy by default)."""
    return record.get("accuracy", {}).get("guard_metric", "accuracy")


def _test_accuracy(repeats: list[dict]) -> float | None:
    measured = records.ok(repeats)
    return records.mean_test(measured, metric(measured[0])) if measured else None


def references(cell_repeats: dict[str, list[dict]]) -> dict[tuple, Reference]:
    """Each comparable group's reference, from the run's reference cells (any seed)."""
    by_key: dict[tuple, dict[int, float]] = {}
    names: dict[tuple, str] = {}
    for cell, repeats in cell_repeats.items():
        accuracy = _test_accuracy(repeats)
        config = repeats[0].get("config", {}) if repeats else {}
        if accuracy is None or not _is_reference(config):
            continue
        seed = config["seed"] if config.get("init_seed") is None else config["init_seed"]
        by_key.setdefault(_key(config), {})[seed] = accuracy
        if config.get("init_seed") is None or _key(config) not in names:
            names[_key(config)] = cell
    return {
        key: Reference(names[key], tuple(sorted(values)), tuple(values[s] for s in sorted(values)))
        for key, values in by_key.items()
    }


def judge(repeats: list[dict], refs: dict[tuple, Reference]) -> dict | None:
    """The guard's judgement of one cell (None for cells that do not train or did not run)."""
    accuracy = _test_accuracy(repeats)
    if accuracy is None:
        return None
    first = records.ok(repeats)[0]
    ref = refs.get(_key(first["config"]))
    if first["config"].get("scaling") == "weak" and first.get("batch", {}).get("replicas", 1) > 1:
        return _unguarded(accuracy, "weak scaling: its global batch differs from the reference's")
    if ref is None:
        return _unguarded(accuracy, "no reference cell (default fit) with the same data and length in this run")
    if len(ref.values) < 2:
        return _unguarded(accuracy, f"the reference ran with one seed only ({ref.cell}); its spread is unknown")
    status = "low" if accuracy < ref.low else "high" if accuracy > ref.high else "ok"
    message = (f"{metric(first)} {accuracy:.3f} vs reference {ref.mean:.3f} ± {ref.sd:.3f} "
               f"({len(ref.values)} seeds; accepted {ref.low:.3f}-{ref.high:.3f})")
    return {"status": status, "metric": metric(first), "value": accuracy, "reference": ref.as_dict(),
            "message": message}


def _unguarded(accuracy: float, why: str) -> dict:
    return {"status": "unguarded", "value": accuracy, "reference": None, "message": f"not guarded: {why}"}


def apply(cell_repeats: dict[str, list[dict]]) -> dict[str, dict]:
    """Judges every cell and stores the judgement in its ok records; returns cell -> judgement."""
    refs = references(cell_repeats)
    verdicts = {}
    for cell, repeats in cell_repeats.items():
        judgement = judge(repeats, refs)
        if judgement is None:
            continue
        verdicts[cell] = judgement
        for record in records.ok(repeats):
            record["accuracy_guard"] = judgement
    return verdicts


def verdict(repeats: list[dict]) -> dict:
    """The judgement :func:`apply` stored in a cell's records ({} when there is none)."""
    measured = records.ok(repeats)
    return (measured[0].get("accuracy_guard") or {}) if measured else {}


def flagged(cell_repeats: dict[str, list[dict]]) -> dict[str, dict]:
    """The cells whose stored judgement is outside the reference's band."""
    verdicts = {cell: verdict(repeats) for cell, repeats in cell_repeats.items()}
    return {cell: v for cell, v in verdicts.items() if v.get("status") in ("low", "high")}
