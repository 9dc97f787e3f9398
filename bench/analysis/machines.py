"""Machines side by side: every matrix cell measured on two or more machines, each
machine's latest measurement of it, and its ratio to a reference machine.

The ratio is ``compare``'s between stored runs of two machines: the ratio of run-level
medians, with an interval from each machine's own between-run noise (its history in
``results/``, as ``compare`` takes it: :func:`~distbench.analysis.compare.comparison_noise`),
judged by the same band rule; cells that are different measurements
(configuration, data or workload code) are shown and not compared. The machines'
fingerprints are compared once, field by field.
"""

from __future__ import annotations

from dataclasses import dataclass

from distbench.analysis.compare import DEFAULT_THRESHOLD, CellComparison, compare_cell, comparison_noise
from distbench.analysis.trends import is_matrix_cell
from distbench.core.errors import UserError
from distbench.storage.machine import fingerprint
from distbench.storage.results import CellResult
from distbench.storage.stored_run import StoredRun


@dataclass(frozen=True)
class Latest:
    """A machine's latest whole measurement of a cell, and how it compares with the reference's."""

    machine: str
    run: StoredRun
    result: CellResult
    comparison: CellComparison | None   # None on the reference machine itself


@dataclass(frozen=True)
class CellRow:
    cell: str
    workload: str
    latest: dict[str, Latest]           # machine -> its latest measurement (machines that measured it)


@dataclass(frozen=True)
class MachineView:
    reference: str
    machines: list[str]                                   # the reference first
    differences: list[tuple[str, dict[str, object]]]     # fingerprint field -> each machine's value
    rows: list[CellRow]


def side_by_side(histories: dict[str, list[StoredRun]], reference: str,
                 threshold: float = DEFAULT_THRESHOLD) -> MachineView:
    """The view over every machine's history (machine id -> its runs in run order)."""
    known = [m for m, runs in histories.items() if runs]
    if reference not in known:
        raise UserError(f"--reference {reference!r} is not a machine with stored runs; known: {', '.join(known)}.")
    machines = [reference] + [m for m in known if m != reference]
    latest = {m: _latest_cells(histories[m]) for m in machines}
    noise = _noise_of(histories)
    shared = [c for c in dict.fromkeys(c for m in machines for c in latest[m])
              if sum(c in latest[m] for m in machines) >= 2]
    rows = []
    for cell in shared:
        base = latest[reference].get(cell)
        entries = {}
        for m in machines:
            if cell not in latest[m]:
                continue
            run, result = latest[m][cell]
            judged = None
            if base and m != reference:
                noise_a, noise_b = noise(base[0], run)
                judged = compare_cell(base[1], result, threshold, noise_a.get(cell), noise_b.get(cell))
            entries[m] = Latest(m, run, result, judged)
        rows.append(CellRow(cell, entries[next(iter(entries))].result.spec.workload, entries))
    order = list(dict.fromkeys(r.workload for r in rows))
    rows.sort(key=lambda r: order.index(r.workload))
    return MachineView(reference, machines, _fingerprint_differences(histories, machines), rows)


def _noise_of(histories: dict[str, list[StoredRun]]):
    """(A's run, B's run) -> compare's noise for them (each pair's computed once)."""
    cache: dict[tuple, tuple[dict, dict]] = {}

    def of(a: StoredRun, b: StoredRun) -> tuple[dict, dict]:
        key = (a.machine_id, a.number, b.machine_id, b.number)
        if key not in cache:
            cache[key] = comparison_noise(histories[a.machine_id], histories[b.machine_id], a, b)
        return cache[key]
    return of


def _latest_cells(history: list[StoredRun]) -> dict[str, tuple[StoredRun, CellResult]]:
    """Each matrix cell's latest whole measurement in a machine's history."""
    found: dict[str, tuple[StoredRun, CellResult]] = {}
    for run in history:
        if run.interrupted:
            continue
        for cell, result in run.results.items():
            if result.whole and is_matrix_cell(result):
                found[cell] = (run, result)
    return found


def _fingerprint_differences(histories: dict[str, list[StoredRun]], machines: list[str]) -> list[tuple]:
    """The fingerprint fields whose values differ between machines (each machine's latest run)."""
    infos = {m: histories[m][-1].machine_info for m in machines}
    prints = {m: fingerprint(info.get("distbench", info)) for m, info in infos.items()}   # as machine.machine_diff
    fields = list(dict.fromkeys(k for p in prints.values() for k in p))
    return [(k, {m: prints[m].get(k) for m in machines}) for k in fields
            if len({repr(prints[m].get(k)) for m in machines}) > 1]
