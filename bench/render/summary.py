"""The run in a terminal: a summary that fits 120 columns (the full table is the report's,
and ``--full-table``'s)."""

from __future__ import annotations

import textwrap

from distbench.analysis import guard
from distbench.render import units
from distbench.render.tables import render_rows
from distbench.storage.results import CellResult

WIDTH = 120
HEADERS = ["cell", "runs", "median ms", "95% CI ms", "throughput", "of peak", "input wait", "test metric", "guard"]


def summary_rows(results: dict[str, CellResult]) -> list[list]:
    """One row per measured cell (the guard's extra seeds left out: they are the guard's)."""
    rows = []
    for r in results.values():
        if not r.measured or r.spec.is_replicate:
            continue
        metric = r.guard_metric if r.guard_value is not None else "accuracy"
        value = r.guard_value if r.guard_value is not None else r.accuracy
        rows.append([
            r.id, r.processes, units.ms(r.median), units.ms_range(r.interval),
            _throughput(r),
            units.share(r.share_of_peak) if r.share_of_peak is not None else "-", input_cell(r),
            f"{metric} {units.metric(value)}" if value is not None else "-", _guard(r),
        ])
    return rows


def _throughput(r: CellResult) -> str:
    """Examples per second for a training cell; GFLOP/s on its primary device for matmul."""
    if r.matmul:
        return units.gflops(r.matmul["devices"][r.matmul["primary_device"]]["gflops"])
    return f"{r.throughput:.0f} ex/s" if r.throughput else "-"


def input_cell(r: CellResult) -> str:
    """``4%``, ``<=12%`` (fit's upper bound), ``93% BOUND`` (input-bound), or ``-``."""
    found = r.input_wait
    if not found:
        return "-"
    text = ("<=" if found["at_most"] else "") + units.percent(found["share"])
    return f"{text} BOUND" if found["input_bound"] else text


def _guard(r: CellResult) -> str:
    status = (r.guard or {}).get("status")
    if not status:
        return "-"
    if status == "underpowered":
        return "low power"
    if status in ("ok", "unguarded"):
        return status
    return status.upper() if guard.worse(r.guard) else "better"


def not_measured_lines(results: dict[str, CellResult]) -> list[str]:
    """Cells that did not run, grouped by reason: ``skipped (3): no GPU ...: cell, cell``."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in results.values():
        if not r.measured:
            groups.setdefault((r.status, r.reason), []).append(r.id)
    lines = []
    for (status, reason), cells in groups.items():
        label = status.upper() if status != "skipped" else "skipped"
        lines += textwrap.wrap(f"{label} ({len(cells)}): {reason}: {', '.join(cells)}", WIDTH,
                               subsequent_indent="    ")
    return lines


def render_summary(results: dict[str, CellResult]) -> str:
    """The summary table, then the cells that did not run."""
    rows = summary_rows(results)
    parts = [render_rows(HEADERS, rows, tight=True)] if rows else ["No cell was measured."]
    replicates = sum(1 for r in results.values() if r.measured and r.spec.is_replicate)
    if replicates:
        parts.append(f"({replicates} more processes: the accuracy guard's reference seeds; `distbench report` "
                     "or --full-table shows every column)")
    parts += not_measured_lines(results)
    return "\n".join(parts)


def wrap(text: str) -> str:
    """Prose wrapped to the summary's width, line by line (never a table: they are made to fit)."""
    return "\n".join(line if len(line) <= WIDTH else textwrap.fill(line, WIDTH, subsequent_indent="    ")
                     for line in text.splitlines())
