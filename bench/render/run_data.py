"""``run --format json`` and ``csv``: each cell's figures as numbers, for a program or a
spreadsheet to read (seconds, examples per second, FLOPs, bytes, shares from 0 to 1); the
tables' text with its units is for a reader (``"median ms": "1.29"``, ``"throughput":
"24859 ex/s"``, and paragraphs after the CSV's rows)."""

from __future__ import annotations

import json
import math

from distbench.render.summary import shown_metric
from distbench.render.tables import render_rows
from distbench.storage.results import CellResult


def run_json(results: dict[str, CellResult], overhead=(), interrupted: bool = False, peak: dict | None = None) -> str:
    """The run as one JSON document: its cells, whether it was interrupted, the devices'
    peak and the overhead benchmark's records as stored."""
    return json.dumps({"cells": [cell_json(r) for r in results.values()], "interrupted": interrupted,
                       "peak": peak, "overhead": list(overhead)}, indent=2)


def run_csv(results: dict[str, CellResult]) -> str:
    """One row per cell of :func:`cell_json`'s figures: the interval as its two ends, time to
    target's as columns, the notes joined; the matmul's devices are the JSON's alone."""
    rows = []
    for r in results.values():
        row = {}
        for key, value in cell_json(r).items():
            if key == "interval_s":
                row["interval_low_s"], row["interval_high_s"] = value or (None, None)
            elif key == "time_to_target":
                row.update({f"time_to_target_{k}": v for k, v in value.items()})
            elif key != "matmul":
                row[key] = "; ".join(value) if key == "notes" else value
        rows.append(row)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return render_rows(columns, [[row.get(c) for c in columns] for row in rows], "csv")


def cell_json(r: CellResult) -> dict:
    """One cell: what it is, and, where it was measured, its figures (None where not known)."""
    spec = r.spec
    found = {"cell": r.id, "workload": spec.workload, "strategy": spec.strategy, "loop": spec.loop,
             "side": r.side or None, "status": r.status, "reason": r.reason or None}
    if not r.measured:
        return found
    metric, value = shown_metric(r)
    found.update({
        "replicas": r.replicas, "processes": r.processes, "failed_processes": r.failed_repeats,
        "median_step_s": r.median, "interval_s": None if r.few_samples else list(r.interval),
        "p90_step_s": r.pooled.p90, "cv": r.pooled.cv, "examples_per_second": r.throughput,
        "input_wait_share": r.input_wait.get("share"), "flops_per_step": r.flops_per_step,
        "achieved_flops_per_second": r.achieved_flops, "share_of_peak": r.share_of_peak,
        "test_metric": metric if value is not None else None, "test_value": value,
        "majority_class_share": r.majority_share, "guard": r.guard.get("status"),
        "peak_rss_bytes": r.peak_rss_bytes, "data_source": r.data_source,
        "disturbed_processes": len(r.disturbed), "notes": r.notes,
    })
    if r.matmul:
        found["matmul"] = r.matmul
    if r.is_target:
        found["time_to_target"] = {"seeds": len(r.times_to_target), "reached": r.reached,
                                   "median_s": _finite(r.time_to_target),   # None: half or more never reached it
                                   "median_steps": _finite(r.median_steps_to_target)}
    return found


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
