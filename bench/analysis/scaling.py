"""Scaling efficiency: how much of N replicas' worth of speed-up a strategy delivers.

    efficiency = throughput(N replicas) / (N x throughput(1 replica))

The one-replica reference is the ``default`` cell of the same workload, loop and
scaling kind. Strong scaling keeps the global batch fixed (each replica gets less);
weak scaling keeps the per-replica batch fixed (the global batch grows with N). Virtual
devices carved from one physical device, and local workers on one machine, share that
hardware: their figure is shown, marked, and is not real scaling. Pure: results in,
rows out; throughput is each cell's at its median over processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from distbench.storage.results import CellResult


@dataclass(frozen=True)
class ScalingRow:
    workload: str
    loop: str
    strategy: str
    replicas: int
    kind: str                  # "strong" or "weak"
    throughput: float          # global examples/s with N replicas
    reference: float           # examples/s of the one-replica default cell
    efficiency: float
    shared_hardware: bool      # virtual devices or local workers: not real scaling
    side: str = ""             # an interleaved run's side ("A", "B"): its own default cell is its reference


def _measured(results: list[CellResult]) -> list[CellResult]:
    # The accuracy guard's extra seeds of the default cell are not scaling figures.
    return [r for r in results if r.throughput is not None and not r.spec.is_replicate]


def efficiencies(results: list[CellResult]) -> list[ScalingRow]:
    """One row per multi-replica cell that has a one-replica default cell to compare with
    (of its own side, in an interleaved run: A's virtual cell had been divided by B's default)."""
    reference = {(r.spec.scaling_key, r.side): r for r in _measured(results) if r.spec.strategy == "default"}
    rows = []
    for r in _measured(results):
        base = reference.get((r.spec.scaling_key, r.side))
        if (r.replicas or 1) < 2 or base is None:
            continue
        rows.append(ScalingRow(
            r.spec.workload, r.spec.loop or "", r.spec.strategy, r.replicas, r.spec.scaling, r.throughput,
            base.throughput, r.throughput / (r.replicas * base.throughput), r.shared_hardware, r.side,
        ))
    return rows
