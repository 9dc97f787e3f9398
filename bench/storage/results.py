"""The read model: one :class:`CellResult` per cell of a run, built once from its records.

Every reader of a run (tables, compare, check, tune, scaling, the guard, the report)
asks a ``CellResult`` for a cell's estimate, interval, throughput and test metrics, so
that each is computed in one place (as asv's ``Results`` answers through accessors).
A cell's repeats are the records of its fresh processes; the process is the unit:

* ``median``: the median over processes of each process's median step time;
* ``interval``: its hierarchical bootstrap interval (processes, then steps);
* ``throughput``: global examples per second at ``median``;
* test metrics: the mean over the processes that ran ok.

Pure: records in, values out. Nothing here renders a sentence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from distbench.core import records, stats
from distbench.core.config import CellSpec
from distbench.core.records import CellRecord
from distbench.storage.target_results import TargetResult


@dataclass(frozen=True)
class CellResult(TargetResult):
    """One cell of a run: its spec, its processes' records, and what they measured."""

    id: str
    repeats: tuple[CellRecord, ...]
    planned: int | None = None   # the processes the run planned for the cell (None: not stored, older runs)

    @classmethod
    def of(cls, cell: str, repeats: list[CellRecord], planned: int | None = None) -> "CellResult":
        return cls(cell, tuple(repeats), planned)

    @cached_property
    def spec(self) -> CellSpec:
        return CellSpec.from_dict(self.repeats[0].get("config", {}) if self.repeats else {})

    @property
    def side(self) -> str:
        """``A`` or ``B`` for a cell of an interleaved run (stored as ``<id>@A``), else empty."""
        return self.id.rpartition("@")[2] if "@" in self.id else ""

    @cached_property
    def ok(self) -> list[CellRecord]:
        """The repeats that ran and were measured."""
        return records.ok(list(self.repeats))

    @property
    def measured(self) -> bool:
        return bool(self.ok) and bool(self.per_process)

    @property
    def whole(self) -> bool:
        """Measured, and every planned repeat measured: no process of the cell crashed or
        failed, and none was left unrun by an interrupted run."""
        return self.measured and self.failed_repeats == 0 and not self.short

    @property
    def shortfall(self) -> str:
        """What keeps a measured cell from being whole ('' when it is)."""
        if self.failed_repeats:
            return f"{self.failed_repeats} of {len(self.repeats)} processes failed ({self.reason})"
        if self.short:
            return f"{self.ran} of {self.planned} planned processes ran (the run was interrupted)"
        return ""

    @property
    def status(self) -> str:
        """``ok`` when every repeat was measured; ``partly failed`` when some were and some
        were not; else the first repeat's status (or ``missing``)."""
        if self.ok:
            return "ok" if self.failed_repeats == 0 else "partly failed"
        return self.repeats[0].get("status", "missing") if self.repeats else "missing"

    @property
    def reason(self) -> str:
        """Why the cell did not run (the first repeat that did not, on one line)."""
        failed = [r for r in self.repeats if r.get("status") != "ok"]
        return records.short_reason(failed[0]) if failed else ""

    @property
    def ran(self) -> int:
        """The repeats that ran (ok, failed or skipped); none for a cell its run never reached."""
        return sum(1 for r in self.repeats if r.get("status") != "missing")

    @property
    def short(self) -> bool:
        """Fewer repeats ran than the run planned (it was interrupted)."""
        return self.planned is not None and self.ran < self.planned

    @property
    def failed_repeats(self) -> int:
        return len(self.repeats) - len(self.ok)

    @property
    def first(self) -> CellRecord:
        """The first measured repeat (the facts every repeat shares: strategy, batch, data)."""
        return self.ok[0] if self.ok else (self.repeats[0] if self.repeats else {})

    # -- step time ------------------------------------------------------------------

    @cached_property
    def per_process(self) -> list[list[float]]:
        """Each measured process's steady-state step times (seconds)."""
        return records.per_process_samples(list(self.repeats))

    @property
    def processes(self) -> int:
        return len(self.per_process)

    @cached_property
    def median(self) -> float:
        """The median over processes of each process's median step time (seconds)."""
        return stats.median_of_medians(self.per_process)

    @cached_property
    def process_medians(self) -> list[float]:
        return [stats.percentile(p, 50) for p in self.per_process]

    @cached_property
    def mean_step(self) -> float:
        """The median over processes of each process's mean time per step (seconds).

        Like for like across steps per execution: a fit cell timed per execution of 50
        steps has 50-step averages as samples, whose median is close to a mean; so
        configurations are ranked on means of per-step time on every side.
        """
        return stats.percentile([stats.mean(p) for p in self.per_process], 50)

    @cached_property
    def interval(self) -> tuple[float, float]:
        """95% hierarchical bootstrap interval of :attr:`median` (seconds)."""
        return stats.hierarchical_bootstrap_median_ci(self.per_process)

    @property
    def few_samples(self) -> bool:
        """Fewer steady samples than a 95% interval of a median needs (6: the range of 3 holds
        the median 75% of the time; a parameter-server cell of 50 steps in units of 10 has 3)."""
        return sum(len(p) for p in self.per_process) < stats.MIN_SAMPLES_95

    @cached_property
    def pooled(self) -> stats.Summary:
        """Every steady step of every process together: describes the spread, never decides."""
        return stats.summarize([s for p in self.per_process for s in p])

    # -- what the cell delivered ------------------------------------------------------

    @property
    def global_batch(self) -> int | None:
        return self.first.get("batch", {}).get("global")

    @property
    def throughput(self) -> float | None:
        """Global examples per second at :attr:`median` (None for cells that do not train)."""
        return stats.throughput(self.global_batch, self.median) if self.global_batch and self.measured else None

    @property
    def matmul(self) -> dict | None:
        return self.first.get("matmul")

    @property
    def strategy_info(self) -> dict:
        return self.first.get("strategy", {})

    @property
    def replicas(self) -> int | None:
        """Replicas in sync (the batch's record of them, else the strategy's)."""
        return self.first.get("batch", {}).get("replicas") or self.strategy_info.get("replicas")

    @property
    def shared_hardware(self) -> bool:
        """Virtual devices, or local workers that share this machine's hardware."""
        info = self.strategy_info
        if "shared_hardware" in info or info.get("virtual_devices"):
            return bool(info.get("virtual_devices") or info["shared_hardware"])
        # Records stored before ``shared_hardware`` existed name their workers in the strategy notes.
        return info.get("strategy") == "multi_worker" and any("127.0.0.1" in n for n in info.get("notes", []))

    @property
    def data_source(self) -> str:
        return self.first.get("data", {}).get("source", "-")

    @property
    def definition(self) -> dict:
        """Hashes of the workload's and loop's code the cell ran ({} in older records)."""
        return self.first.get("definition") or {}

    def workload_codes(self, other: "CellResult") -> tuple[str | None, str | None]:
        """This cell's and ``other``'s workload-code hashes, the finest both recorded: its
        module's and its project's modules' (``workload_code``), else its module's alone
        (``workload``, records stored before; :mod:`distbench.scenarios.definition`)."""
        for key in ("workload_code", "workload"):
            mine, theirs = self.definition.get(key), other.definition.get(key)
            if mine and theirs:
                return mine, theirs
        return self.definition.get("workload"), other.definition.get("workload")

    @property
    def data_fingerprint(self) -> str | None:
        """The hash of the examples trained on (arrays only; None for dataset functions and
        records stored before it: :meth:`distbench.workloads.inputs.Examples.fingerprint`)."""
        return self.first.get("data", {}).get("fingerprint")

    @property
    def data_shape(self) -> dict:
        """What the data was: source, sizes, vocabulary, sequence length."""
        d = self.first.get("data", {})
        keys = ("source", "train_examples", "test_examples", "vocab_size", "sequence_length", "num_classes")
        return {k: d[k] for k in keys if k in d}

    @property
    def majority_share(self) -> float | None:
        """The test accuracy of always answering the commonest class (what 'accuracy' beats)."""
        return self.first.get("data", {}).get("majority_class_share")

    @property
    def peak_rss_bytes(self) -> int | None:
        peaks = [r.get("memory", {}).get("peak_rss_bytes") for r in self.ok]
        peaks = [p for p in peaks if p is not None]
        return max(peaks) if peaks else None

    @property
    def notes(self) -> list[str]:
        return list(self.strategy_info.get("notes", [])) + list(self.first.get("loop", {}).get("notes", []))

    @property
    def disturbed(self) -> list[dict]:
        """The disturbance records of the repeats that were disturbed while timed. Cells of
        local processes (multi_worker, parameter_server) are never marked: their "other
        processes" include the cell's own other workers and servers on this machine."""
        if self.shared_hardware and not self.strategy_info.get("virtual_devices"):
            return []
        return [r["disturbance"] for r in self.ok if (r.get("disturbance") or {}).get("disturbed")]

    @property
    def loop_settings(self) -> dict:
        return self.first.get("loop", {}).get("settings", {})

    @property
    def timing_cost(self) -> dict | None:
        """What the loop's per-step timing costs its wall time (fit's callback: timed over
        untimed ``fit``): one process's median pair ratio with its interval, or, over
        several processes, the median of theirs with the interval of those (the process
        is then the unit). None when it was not measured."""
        costs = [r["loop"]["timing_cost"] for r in self.ok if r.get("loop", {}).get("timing_cost")]
        if not costs:
            return None
        untimed = stats.percentile([c["untimed_step_s"] for c in costs], 50)
        if len(costs) == 1:
            (c,) = costs
            return {"ratio": c["ratio"], "interval": tuple(c["ratio_ci"]), "coverage": c.get("coverage"),
                    "pairs": c["pairs"], "processes": 1, "untimed_step_s": untimed}
        ratios = [c["ratio"] for c in costs]
        low, high, coverage = stats.median_order_interval(ratios)
        return {"ratio": stats.percentile(ratios, 50), "interval": (low, high), "coverage": coverage,
                "pairs": sum(c["pairs"] for c in costs), "processes": len(costs), "untimed_step_s": untimed}

    # -- what verdicts compare -------------------------------------------------------

    @property
    def estimate(self) -> float | None:
        """The quantity a verdict compares, lower is better: the median time to target
        (seconds; ``inf`` when not reached) for a target cell, the median step else."""
        if self.is_target:
            return self.time_to_target
        return self.median if self.measured else None

    # -- share of the hardware's limit --------------------------------------------------

    @property
    def flops_per_step(self) -> int | None:
        """FLOPs of one training step of the global batch, counted from its trace."""
        return (self.first.get("compute") or {}).get("flops_per_step")

    @property
    def achieved_flops(self) -> float | None:
        """FLOP/s at :attr:`median` (training cells); a matmul cell's primary device's rate."""
        if self.matmul:
            return self.matmul["devices"][self.matmul["primary_device"]]["gflops"] * 1e9
        if not (self.flops_per_step and self.measured):
            return None
        return self.flops_per_step / self.median

    @property
    def peak(self) -> dict:
        """The run's measured peak of this cell's device ({} when none was measured)."""
        return (self.first.get("compute") or {}).get("peak") or {}

    @property
    def share_of_peak(self) -> float | None:
        """Achieved FLOP/s over the peak of the devices it used (the one device's peak,
        measured in the same run, times how many: four GPUs at 60% each read 240%)."""
        if self.achieved_flops is None or not self.peak.get("gflops"):
            return None
        return self.achieved_flops / (self.peak["gflops"] * 1e9 * self.peak.get("devices", 1))

    @property
    def input_wait(self) -> dict:
        """The share of step time spent waiting for input: the median over the measured
        processes (``share``), whether it is an upper bound (fit's), and whether the cell is
        input-bound (the median above the records' threshold); {} when not measured."""
        found = [r["input"] for r in self.ok if (r.get("input") or {}).get("wait_share") is not None]
        if not found:
            return {}
        share = stats.percentile([f["wait_share"] for f in found], 50)
        return {"share": share, "at_most": bool(found[0].get("at_most")), "threshold": found[0]["threshold"],
                "input_bound": share > found[0]["threshold"], "method": found[0]["method"]}

    @property
    def share_of_datasheet(self) -> float | None:
        """Achieved FLOP/s over the GPU's datasheet float32 peak, where it is known."""
        sheet = self.peak.get("datasheet_gflops")
        if not sheet or self.achieved_flops is None:
            return None
        return self.achieved_flops / (sheet * 1e9 * self.peak.get("devices", 1))

    # -- how well it learned ---------------------------------------------------------

    def test_metric(self, metric: str = "accuracy") -> float | None:
        """The mean of a test metric over the measured repeats (None when none has it)."""
        return records.mean_test(self.ok, metric)

    @property
    def accuracy(self) -> float | None:
        return self.test_metric("accuracy")

    @property
    def guard_metric(self) -> str:
        """The test metric the accuracy guard (and check) compares for this workload."""
        return self.first.get("accuracy", {}).get("guard_metric", "accuracy")

    @property
    def guard_direction(self) -> str:
        """``higher`` or ``lower``: which way is better for the guard's metric."""
        return self.first.get("accuracy", {}).get("guard_direction", "higher")

    @property
    def guard_value(self) -> float | None:
        return self.test_metric(self.guard_metric)

    @property
    def guard(self) -> dict:
        """The accuracy guard's judgement stored in the records ({} when there is none)."""
        return (self.ok[0].get("accuracy_guard") or {}) if self.ok else {}


def results_of(cell_repeats: dict[str, list[CellRecord]], planned: dict[str, int] | None = None
               ) -> dict[str, CellResult]:
    """Cell id -> its :class:`CellResult`, in run order; ``planned``: cell id -> the
    processes the run planned for it, when known."""
    planned = planned or {}
    return {cell: CellResult.of(cell, repeats, planned.get(cell)) for cell, repeats in cell_repeats.items()}


def corrupt(result: CellResult) -> str | None:
    """What of a measured cell no process records (a file edited by hand): a step time that
    is no positive, finite number of seconds, or a test metric of NaN or infinity (a worker
    stores none as null, which the checks read as lost: a NaN had read as a pass)."""
    steps = [v for samples in result.per_process for v in samples
             if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0)]
    if steps:
        return f"a step time of {steps[0]!r}"
    tests = [(name, v) for r in result.ok for name, v in ((r.get("accuracy") or {}).get("test") or {}).items()
             if isinstance(v, float) and not math.isfinite(v)]
    return f"a test {tests[0][0]} of {tests[0][1]!r}" if tests else None
