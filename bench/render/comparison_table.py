"""Stored runs compared, as rows and lines: ``compare`` and ``check --baseline``'s table, its
headings and notes (the check's closing lines are :mod:`distbench.render.verdicts`')."""

from __future__ import annotations

import json
import textwrap

from distbench.analysis.compare import MIN_HISTORY_RUNS
from distbench.render import summary, units
from distbench.render.run_table import interrupted_line
from distbench.render.tables import render_rows

COMPARE_HEADERS = [
    "cell", "runs A/B", "median A", "median B", "B/A [95% CI]", "throughput B/A",
    "metric", "A", "B", "delta", "noise from", "verdict",
]


def comparison_rows(cells, worse=frozenset()) -> list[list]:
    """One row per cell of :data:`COMPARE_HEADERS`; ``worse``: the cells ``check`` found
    learning worse (their verdict says so beside the speed's)."""
    rows = []
    for c in cells:
        if not c.verdict:
            rows.append([c.cell] + [""] * 10 + [c.presence])
            continue
        rows.append([
            c.cell, f"{c.a.processes}/{c.b.processes}", units.estimate(c.median_a, c.target),
            units.estimate(c.median_b, c.target),
            units.ratio(c.ratio, c.ratio_ci), units.ratio(c.throughput_ratio), c.metric if c.accuracy_a else "-",
            units.metric(c.accuracy_a), units.metric(c.accuracy_b), units.signed_metric(c.accuracy_delta),
            history(c, "stored runs") if c.noise_runs else "no history",
            f"{c.verdict}, less accurate" if c.cell in worse else c.verdict,
        ])
    return rows


def history(c, runs: str = "runs") -> str:
    """The runs a cell's noise came from: ``8 runs``; ``8 runs (A)`` when only A's machine had
    a history, which then stands for B's too (see :func:`one_machine_lines`)."""
    return f"{c.noise_runs} {runs}" + (f" ({c.noise_of})" if c.noise_of else "")


def one_machine_lines(cells) -> list[str]:
    """The cells judged with one machine's noise for both (runs of two machines)."""
    groups: dict[str, list[str]] = {}
    for c in cells:
        if c.noise_of:
            other = "B" if c.noise_of == "A" else "A"
            groups.setdefault(f"{c.noise_of}'s machine's noise stands for {other}'s too, which has fewer than "
                              f"{MIN_HISTORY_RUNS} stored runs that measured the cell so", []).append(c.cell)
    return summary.grouped_lines("noise of one machine", groups)


def run_heading(side: str, run) -> str:
    """``A: MACHINE/FILE (commit ..., date)``; for an interrupted run, a second line naming
    the cells it left short or never ran (:func:`~distbench.render.run_table.interrupted_line`)."""
    heading = f"{side}: {run.label} (commit {run.commit}, {run.data.get('datetime', '?')})"
    return heading + (f"\n{side} {interrupted_line(run.results)}" if run.interrupted else "")


def machine_line(diff) -> str:
    if not diff:
        return "Same machine fingerprint."
    return "Machines differ in: " + "; ".join(f"{k}: {a} -> {b}" for k, a, b in diff)


HISTORY_NOTE = ("Stored runs of different times: each run is one unit, and the interval of B/A comes from the "
                "spread of each cell's run-level median over this machine's stored runs ({runs} at least, "
                "besides A and B, the runs compared). A cell without that history is undecided: compare at the same "
                "time with `distbench check --against REV` or `distbench ab`.")


def history_note() -> str:
    return HISTORY_NOTE.format(runs=MIN_HISTORY_RUNS)


def skipped_history_line(reason: str) -> str:
    """One stored run left out of a machine's history (it cannot be read)."""
    return f"distbench: skipped in the history: {reason}"


def comparison_text(comparison, fmt: str, verdict: dict | None = None, worse=frozenset()) -> str:
    """``compare`` and ``check --baseline``'s table of a stored-run comparison: the runs, the
    machines' differences, the cells and how they were judged; as JSON, one document, with
    ``check``'s :func:`verdict_document` when given. ``worse``: the cells the check found
    learning worse, ``LESS ACCURATE`` in the verdict column (it read the speed's alone)."""
    if fmt == "json":
        return json.dumps({
            "a": comparison.a.label, "b": comparison.b.label,
            "a_interrupted": comparison.a.interrupted, "b_interrupted": comparison.b.interrupted,
            "machine_diff": [{"field": k, "a": a, "b": b} for k, a, b in comparison.machine_diff],
            # The table's header warnings, as data: which distbench made each run, and the cells
            # whose loop code differs between them (a ratio that includes the change).
            "builds": {"a": comparison.a.build, "b": comparison.b.build, "differ": comparison.builds_differ},
            "loop_changed": [c.cell for c in comparison.loop_changed],
            "cells": [{**c.as_dict(), "less_accurate": c.cell in worse} for c in comparison.cells],
            **(verdict or {}),
        }, indent=2)
    if fmt == "csv":
        return comparison_csv(comparison, worse)
    if fmt != "table":
        return render_rows(COMPARE_HEADERS, comparison_rows(comparison.cells, worse), fmt)
    parts = context_lines(comparison) + [""]
    groups = _comparison_groups(comparison.compared, worse)
    parts.append(summary.grouped_table(groups, COMPARE_TERMINAL) if groups else "No cell was compared.")
    absent: dict[str, list[str]] = {}
    for c in comparison.cells:
        if not c.verdict:
            absent.setdefault(c.presence.removeprefix("not comparable: "), []).append(c.cell)
    parts += summary.grouped_lines("not compared", absent) + one_machine_lines(comparison.compared)
    for side in ("A", "B"):
        parts += summary.disturbed_lines([c.a if side == "A" else c.b for c in comparison.compared], f"in {side}")
    text = summary.wrap("\n".join(parts))
    if comparison.compared:
        text += "\n\n" + textwrap.fill(history_note(), summary.WIDTH, break_on_hyphens=False)
    return text


def comparison_csv(comparison, worse=frozenset()) -> str:
    """One row per cell of the JSON's figures, as numbers (seconds, ratios): the interval as
    its two ends (it was the table's text, ``"0.95 [0.10, 8.72]"``, as run's csv no longer is)."""
    rows = []
    for c in comparison.cells:
        row = c.as_dict()
        low, high = row.pop("ratio_ci") or (None, None)
        row = {**row, "ratio_low": low, "ratio_high": high, "less_accurate": c.cell in worse}
        rows.append({k: "/".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()})
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return render_rows(columns, [[row.get(k) for k in columns] for row in rows], "csv")


def context_lines(comparison) -> list[str]:
    """What the runs are, and what differs between them besides the code measured: the
    table's heading, and under ``--format csv`` or ``markdown`` the lines beside the document
    (a Markdown table of two machines' runs had read as one machine's)."""
    lines = [run_heading("A", comparison.a), run_heading("B", comparison.b), machine_line(comparison.machine_diff)]
    if comparison.builds_differ:
        what = "differs" if comparison.builds_differ == "differ" else "builds cannot be matched (different records)"
        lines.append(f"distbench {what}: A {comparison.a.build}, B {comparison.b.build}.")
    return lines + summary.grouped_lines("loop code differs", {"a ratio includes the change": [
        c.cell for c in comparison.loop_changed]} if comparison.loop_changed else {})


# The terminal's comparison (the other formats have every column of COMPARE_HEADERS):
# rows grouped by workload, B's throughput left out (the inverse of B/A for one cell).
COMPARE_TERMINAL = ["cell", "runs A/B", "median A", "median B", "B/A [95% CI]", "test A", "test B", "history",
                    "verdict"]


def _comparison_groups(cells, worse=frozenset()) -> list[tuple[str, list[list]]]:
    """(heading, rows) per workload for :data:`COMPARE_TERMINAL`, the heading naming the
    test metric."""
    groups: dict[str, tuple[list[str], list[list]]] = {}
    for c in cells:
        metrics, rows = groups.setdefault(c.cell.split("-")[0], ([], []))
        if c.accuracy_a is not None and c.metric not in metrics:
            metrics.append(c.metric)
        rows.append([summary.short_id(c.cell), f"{c.a.processes}/{c.b.processes}", units.estimate(c.median_a, c.target),
                     units.estimate(c.median_b, c.target), units.ratio(c.ratio, c.ratio_ci),
                     units.metric(c.accuracy_a), units.metric(c.accuracy_b),
                     history(c) if c.noise_runs else f"<{MIN_HISTORY_RUNS} runs",   # too few, not "none"
                     "LESS ACCURATE" if c.cell in worse else c.verdict])
    return [(workload + (f" (test: {', '.join(metrics)})" if metrics else "") + ":", rows)
            for workload, (metrics, rows) in groups.items()]
