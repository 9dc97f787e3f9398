"""Worker process entry point: runs one cell and writes its record as JSON.

Usage: ``python -m bench.worker SPEC.json RECORD.json [TASK]``, TASK ``cell`` (default)
``overhead`` (:func:`bench.overhead.measure_fit`), ``bare`` / ``bare-accuracy``
(:mod:`bench.bare`) or ``peak`` (:func:`bench.peak.measure`). Started by the launcher, one process per cell,
so that each cell gets its own device set-up and its own memory peak.
Whatever happens, the worker writes a record (ok, skipped or error) unless it is killed.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from bench.fileio import atomic_write_json


TASKS = ("cell", "overhead", "bare", "bare-accuracy", "peak")


def main(argv: list[str]) -> int:
    spec_path, record_path, *rest = argv
    task = rest[0] if rest else "cell"
    from bench.config import CellSpec

    with open(spec_path) as f:
        spec = CellSpec.from_dict(json.load(f))
    try:
        from bench.errors import UserError

        from strategies.tpu import ConnectTimeout

        try:
            record = _run(task, spec)
        except UserError as exc:
            record = _error(spec, str(exc), "user_error")
        except ConnectTimeout as exc:
            record = _error(spec, str(exc), "timeout")
    except Exception as exc:  # noqa: BLE001 - reported in the record, kept out of the numbers
        record = _error(spec, f"{type(exc).__name__}: {exc}".strip(), "exception")
        record["traceback"] = traceback.format_exc()
    record["worker_pid"] = os.getpid()
    atomic_write_json(record_path, record)
    return 0


def _run(task: str, spec) -> dict:
    if task == "overhead":
        from bench.overhead import measure_fit

        return measure_fit(spec)
    if task == "peak":
        from bench.peak import measure

        return measure(spec)
    if task.startswith("bare"):
        from bench.bare import measure

        return measure(spec, "accuracy" if task == "bare-accuracy" else "workload")
    if task != "cell":
        raise ValueError(f"Unknown worker task {task!r}. Known: {', '.join(TASKS)}.")
    from bench.cell import run_cell

    return run_cell(spec)


def _error(spec, reason: str, kind: str) -> dict:
    from bench.records import failed

    return failed(spec, reason, error_kind=kind)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # The record is written: exit now, as the fork server's workers do, without waiting for a
    # thread left blocked inside TensorFlow (a TPU connect past its deadline) or its teardown.
    os._exit(code)
