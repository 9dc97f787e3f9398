"""Child side: the one table of what a worker process can run, by name.

A worker's task is ``cell`` (the scenario of its workload's kind, after the set-up every
cell shares: :func:`distbench.scenarios.cell.run_cell`) or the name of a scenario that
sets itself up: the overhead benchmark's bare loop, ``fit``'s timing cost, the peak, the
check of a user's workload before a run; the machine's devices and which data ``auto``
means, for a parent that keeps TensorFlow out of its own process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from distbench import plugins
from distbench.core.config import CellSpec
from distbench.core.records import CellRecord
from distbench.scenarios import bare, cell, fit_cost, matmul, peak, preflight, server, training
from distbench.strategies import devices, hardware
from distbench.strategies.hardware import Hardware


@dataclass(frozen=True)
class Scenario:
    """What a worker runs: ``run`` returns the record (``in_cell``: the record's scenario
    part, after :func:`~distbench.scenarios.cell.run_cell`'s set-up)."""

    run: Callable[..., dict]
    in_cell: bool = False
    plugins: bool = True    # loads the user's modules its spec names (a server serves none of them)
    threads: bool = False   # sets the spec's thread pools first, as a cell does (the bare loop's too)


SCENARIOS: dict[str, Scenario] = {
    "training": Scenario(training.run, in_cell=True),
    "matmul": Scenario(matmul.run, in_cell=True),
    "overhead": Scenario(fit_cost.measure, threads=True),
    "bare": Scenario(lambda spec: bare.measure(spec, "workload"), threads=True),
    "bare-accuracy": Scenario(lambda spec: bare.measure(spec, "accuracy"), threads=True),
    "peak": Scenario(peak.measure),
    "preflight": Scenario(preflight.check),   # a user's workload checked once per run, before any timing
    "data": Scenario(preflight.data_source),   # which data `auto` means, for a parent without TensorFlow
    "server": Scenario(server.serve, plugins=False),   # a parameter-server cluster's worker or ps: serves until killed
    # The devices and TensorFlow's build, listed for a parent that does not import TensorFlow.
    "machine": Scenario(lambda spec: {"cell": "machine", "status": "ok", "machine": hardware.found()}),
}
TASKS = ("cell", *(name for name, s in SCENARIOS.items() if not s.in_cell))


def cell_runner(kind: str) -> Callable[..., dict]:
    """The scenario of a workload kind (``training``, ``matmul``)."""
    found = SCENARIOS.get(kind)
    if found is None or not found.in_cell:
        known = [n for n, s in SCENARIOS.items() if s.in_cell]
        raise ValueError(f"Unknown workload kind {kind!r}. Known: {', '.join(known)}.")
    return found.run


def run_cell(spec: CellSpec, hw: Hardware | None = None) -> CellRecord:
    """Runs the cell ``spec`` in this process (the worker's ``cell`` task); its record."""
    return cell.run_cell(spec, cell_runner, hw)


def run(task: str, spec: CellSpec) -> CellRecord:
    """Runs ``task`` for ``spec`` in this process; its record."""
    if task == "cell":
        return run_cell(spec)
    if task not in TASKS:
        raise ValueError(f"Unknown worker task {task!r}. Known: {', '.join(TASKS)}.")
    scenario = SCENARIOS[task]
    if spec is not None and scenario.threads:   # before the user's modules, as a cell's set-up
        devices.set_threads(spec.intra_op_threads, spec.inter_op_threads)
    if spec is not None and scenario.plugins:   # a user's workload, as for a cell: the bare loop reads it too
        plugins.ensure(spec)
    return scenario.run(spec)
