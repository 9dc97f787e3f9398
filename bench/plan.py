"""Parent side: what a run will do, decided before any worker starts.

The matrix of cells (the cartesian product of the selection), the accuracy guard's
replicates, the overhead benchmark's cells, and each cell's skip reason, from the
adapters' side-effect-free checks: an unavailable strategy costs no process start.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

from typing import Iterable

import bench.loops as loops
import strategies
import workloads
from bench.config import CellSpec
from strategies.hardware import Hardware


def adapter_for(spec: CellSpec) -> strategies.StrategyAdapter:
    return strategies.get(spec.strategy, devices=spec.devices, workers=spec.workers)


def selected(requested: Iterable[str] | None, registry) -> list[str]:
    """The requested names (validated, in order, once each), or every registered name."""
    if not requested:
        return registry.names()
    names = list(dict.fromkeys(requested))
    for name in names:
        registry.get(name)  # raises UserError listing the valid names
    return names


def build_cells(
    workload_names: Iterable[str] | None = None,
    strategy_names: Iterable[str] | None = None,
    loop_names: Iterable[str] | None = None,
    base: CellSpec | None = None,
) -> list[CellSpec]:
    """The cartesian product of the selection (``None`` = all), validated.

    Each workload says which of the selection it runs (:meth:`cells`): a training
    workload every strategy x loop; matmul, which does not train, one cell per strategy
    that hands it devices to time, with no loop.
    """
    chosen_s = selected(strategy_names, strategies.STRATEGIES)
    chosen_l = selected(loop_names, loops.LOOPS)
    base = base or CellSpec.for_profile("quick", workload="", strategy="", loop=None)
    cells = []
    for w in selected(workload_names, workloads.WORKLOADS):
        cells += [base.replace(workload=w, strategy=s, loop=lp) for s, lp in workloads.get(w).cells(chosen_s, chosen_l)]
    for cell in cells:
        cell.validate()
    return cells


def overhead_cells(cells: list[CellSpec]) -> list[CellSpec]:
    """The harness-overhead benchmark's cells: the default strategy's custom loop of each
    training workload in ``cells`` (measured by :mod:`bench.overhead`, not as cells)."""
    seen: dict[str, CellSpec] = {}
    for cell in cells:
        if cell.loop is not None and cell.workload not in seen:
            seen[cell.workload] = cell.plain("default", "custom")
    return list(seen.values())


def skip_reason(spec: CellSpec, hw: Hardware) -> str | None:
    """Why ``spec`` cannot run on ``hw`` (None when it can); quick and side-effect free."""
    adapter = adapter_for(spec)
    availability = adapter.availability(hw)
    if not availability.ok:
        return availability.reason
    unsupported = adapter.loop_unsupported(spec.loop) or (adapter.jit_unsupported(hw) if spec.jit_compile else None)
    if unsupported:
        return unsupported
    return workloads.get(spec.workload).unavailable(spec, adapter, hw)
