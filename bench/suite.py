"""Builds the matrix of cells and runs it, one worker process per cell.

Skips are decided here, in the parent, from the adapters' side-effect-free checks, so
an unavailable strategy costs no process start. ``data: auto`` is resolved here once
per workload (a Keras download is tried once per run, not once per cell).
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

import bench.loops as loops
import strategies
import workloads
from bench import cluster, launcher
from bench.config import CellSpec
from bench.errors import UserError
from bench.records import CellRecord, skipped
from bench.runner import MATMUL_STRATEGIES, adapter_for, skip_reason
from strategies import hardware
from strategies.hardware import Hardware

Progress = Callable[[int, int, CellSpec, CellRecord, float], None]


def build_cells(
    workload_names: Iterable[str] | None = None,
    strategy_names: Iterable[str] | None = None,
    loop_names: Iterable[str] | None = None,
    base: CellSpec | None = None,
) -> list[CellSpec]:
    """The cartesian product of the selection (``None`` = all), validated.

    Matmul does not train: it gets one cell per strategy that hands it devices to time
    (default: the CPU; one_gpu: GPU 0; mirrored: every GPU), with no loop.
    """
    chosen_w = selected(workload_names, workloads.WORKLOADS)
    chosen_s = selected(strategy_names, strategies.STRATEGIES)
    chosen_l = selected(loop_names, loops.LOOPS)
    base = base or CellSpec.for_profile("quick", workload="", strategy="", loop=None)
    cells = []
    for w in chosen_w:
        if workloads.get(w).kind == "matmul":
            cells += [base.replace(workload=w, strategy=s, loop=None) for s in chosen_s if s in MATMUL_STRATEGIES]
        else:
            cells += [base.replace(workload=w, strategy=s, loop=lp) for s in chosen_s for lp in chosen_l]
    for cell in cells:
        cell.validate()
    return cells


def overhead_cells(cells: list[CellSpec]) -> list[CellSpec]:
    """The harness-overhead benchmark's cells: the default strategy's custom loop of each
    training workload in ``cells`` (measured by :mod:`bench.overhead`, not as cells)."""
    seen: dict[str, CellSpec] = {}
    for cell in cells:
        if cell.loop is not None and cell.workload not in seen:
            seen[cell.workload] = cell.plain("default", "custom").replace(steps_per_epoch=None)
    return list(seen.values())


def selected(requested: Iterable[str] | None, registry) -> list[str]:
    if not requested:
        return registry.names()
    names = list(dict.fromkeys(requested))
    for name in names:
        registry.get(name)  # raises UserError listing the valid names
    return names


class Suite:
    """Runs cells in worker processes and remembers how ``auto`` data resolved."""

    def __init__(self, hw: Hardware | None = None, launch=launcher.launch, launch_cluster=cluster.launch_cluster) -> None:
        self.hw = hw or hardware.detect()
        self._launch = launch
        self._launch_cluster = launch_cluster
        self._sources: dict[tuple[str, str, int], str] = {}

    def prepare(self, spec: CellSpec) -> CellSpec:
        """``spec`` with its data source resolved (``auto`` -> ``keras`` or ``synthetic``)."""
        workload = workloads.get(spec.workload)
        if workload.kind != "training":
            return spec
        key = (spec.workload, spec.data, spec.seed)
        if key not in self._sources:
            self._sources[key] = workload.resolve_source(spec.data, spec.seed)
        return spec.replace(data=self._sources[key])

    def run(self, spec: CellSpec) -> CellRecord:
        reason = skip_reason(spec, self.hw)
        if reason:
            return skipped(spec, reason)
        if adapter_for(spec).local_processes() > 1:
            return self._launch_cluster(self.prepare(spec))
        return self._launch(self.prepare(spec))

    def overhead(self, spec: CellSpec) -> CellRecord:
        """The harness-overhead benchmark of ``spec`` (bench.overhead), in its own process."""
        return self._launch(self.prepare(spec), task="overhead")

    def run_all(
        self, specs: list[CellSpec], repeats: int = 1, progress: Progress | None = None
    ) -> dict[str, list[CellRecord]]:
        """Runs each cell ``repeats`` times, each time in a fresh process; cell id -> records.

        Repeats go round the whole matrix (cell 1, 2, ..., then again), so a slow spell
        of the machine spreads over cells instead of landing on one.
        """
        if not isinstance(repeats, int) or repeats < 1:
            raise UserError(f"Repeats must be an integer >= 1; received {repeats!r}.")
        started = time.monotonic()
        results: dict[str, list[CellRecord]] = {spec.id: [] for spec in specs}
        total, k = len(specs) * repeats, 0
        for _ in range(repeats):
            for spec in specs:
                record = self.run(spec)
                results[spec.id].append(record)
                k += 1
                if progress:
                    progress(k, total, spec, record, time.monotonic() - started)
        return results
