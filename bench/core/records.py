"""The record of one cell: what ran, on what, how fast, how well. Plain JSON values."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import sys
from typing import Any, Literal, TypedDict

from distbench.core import stats
from distbench.core.config import CellSpec

Status = Literal["ok", "skipped", "error", "missing"]


class CellRecord(TypedDict, total=False):
    cell: str
    status: Status
    reason: str                  # why skipped, or what went wrong
    config: dict                 # CellSpec.to_dict()
    definition: dict             # hashes of the workload's and the loop's code (distbench.scenarios.definition)
    strategy: dict               # adapter describe(): replicas, devices, virtual_devices, notes
    data: dict                   # source ("keras" | "synthetic" | "folder:..."), sizes
    batch: dict                  # global, per_replica, replicas, scaling ("strong" | "weak")
    steps: dict                  # epochs, steps_per_epoch, total, cold_start_s, warmup,
                                 # samples (steady, s/step), steps_per_sample
    step_time: dict              # stats.Summary.as_dict() of the steady samples
    examples_per_second: float   # global examples per second at the median step
    accuracy: dict               # train (last epoch), test metrics
    loop: dict                   # name, settings, notes
    matmul: dict                 # per-device timings, GFLOP/s, speed-ups, sum check
    memory: dict                 # peak_rss_bytes, rss_end_bytes, device_peak_bytes
    threads: dict                # intra_op, inter_op (TensorFlow's thread pools)
    workers: list                # multi_worker: each worker's pid, exit, status, reason
    worker_pid: int              # the process that ran the cell
    error_kind: str              # user_error | exception | timeout | crash | cluster
    traceback: str               # for error_kind "exception"
    output_tail: str             # the end of the worker's output, for timeouts and crashes
    wall_s: float                # run_cell in the worker: set-up to record
    process_wall_s: float        # the worker process as the parent saw it: start-up and exit included
    phases: dict                 # set_up_s, data_s, build_s, train_s, evaluate_s (where wall_s went)
    disturbance: dict            # while training: others_cpu, steal, load_1m, disturbed (distbench.trackers.disturbance)


def ok(repeats: list[CellRecord]) -> list[CellRecord]:
    """The repeats of a cell that ran and were measured."""
    return [r for r in repeats if r.get("status") == "ok"]


def per_process_samples(repeats: list[CellRecord]) -> list[list[float]]:
    """Each measured repeat's steady-state step times (one list per process)."""
    return [r["steps"]["samples"] for r in ok(repeats)]


def pooled_samples(repeats: list[CellRecord]) -> list[float]:
    """Every measured repeat's steady-state step times, in one list."""
    return [s for samples in per_process_samples(repeats) for s in samples]


def mean_test(repeats: list[CellRecord], metric: str = "accuracy") -> float | None:
    """The mean of a test metric over the measured repeats (None when none has it)."""
    values = [v for v in (test_value(r, metric) for r in ok(repeats)) if v is not None]
    return stats.mean(values) if values else None


def test_value(record: CellRecord, metric: str) -> float | None:
    """One process's test metric (None when it has none: NaN is stored as null)."""
    return ((record.get("accuracy") or {}).get("test") or {}).get(metric)


# TensorFlow's closing advice under a cluster's error: the same whatever failed.
BOILERPLATE = ("The error could be from a previous operation.", "The tasks have crashed. Check the task logs")


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")   # Keras 3 bolds its messages ("\x1b[1m...\x1b[0m")


def short_reason(record: CellRecord, limit: int = 800) -> str:
    """The reason on one line: TensorFlow's messages run to pages, with the point at the end.

    The first line, then (when there are more) `` ... `` and the last line that says
    something: a collective's or a cluster's one-line error (about 370 characters) whole,
    with the tasks it lists after it (``/job:worker/replica:0/task:1``), past TensorFlow's
    closing advice (``Restart your program to reset.``).
    Past ``limit`` characters it is cut, saying so; the record keeps the whole reason.
    """
    lines = [line.strip() for line in ANSI.sub("", record.get("reason", "")).splitlines() if line.strip()]
    if not lines:
        return ""
    said = [line for line in lines if not line.startswith(("[[", "File ", *BOILERPLATE))] or lines
    start = len(said) - 1
    while start > 1 and said[start].startswith("/job:"):   # the tasks a cluster's error lists, a line each
        start -= 1
    last = " ".join(said[start:])
    text = lines[0] if len(lines) == 1 or last == lines[0] else f"{lines[0]} ... {last}"
    where = raised_at(record)
    text += f" (raised at {where})" if where else ""
    if len(text) <= limit:
        return text
    note = " [{} more characters in the stored record]"
    shown = limit - len(note.format(len(text)))
    return text[:shown] + note.format(len(text) - shown)


FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (.+)$')


@functools.cache
def _our_folders() -> tuple[str, ...]:
    """distbench's own source folders (its package and the two mapped into it), looked up once."""
    return tuple(os.path.join(os.path.realpath(p), "") for name in ("distbench", "distbench.strategies",
                                                                    "distbench.workloads")
                 for p in (importlib.util.find_spec(name).submodule_search_locations or []))


def raised_at(record: CellRecord) -> str:
    """Where the user's code raised an exception a cell failed with: the last frame of the
    record's traceback outside distbench, Python's and installed packages' code
    (``model.py:29, in build_model``, relative to the folder the command runs in); '' when
    none is the user's. The traceback itself stays in the stored record."""
    ours = _our_folders()
    frames = [m.groups() for m in map(FRAME.match, record.get("traceback", "").splitlines()) if m]
    for path, line, function in reversed(frames):
        real = os.path.realpath(path)
        if real.startswith(ours) or path.startswith("<") or "-packages" + os.sep in real or real.startswith(
                os.path.join(os.path.realpath(sys.base_prefix), "")):
            continue
        shown = os.path.relpath(real) if not os.path.relpath(real).startswith("..") else real
        return f"{shown}:{line}, in {function}"
    return ""


def skipped(spec: CellSpec, reason: str) -> CellRecord:
    return {"cell": spec.id, "status": "skipped", "reason": reason, "config": spec.to_dict()}


def failed(spec: CellSpec, reason: str, **details: Any) -> CellRecord:
    return {"cell": spec.id, "status": "error", "reason": reason, "config": spec.to_dict(), **details}


def missing(spec: CellSpec, reason: str) -> CellRecord:
    """A planned cell that never ran (its run was interrupted first)."""
    return {"cell": spec.id, "status": "missing", "reason": reason, "config": spec.to_dict()}
