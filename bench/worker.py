"""Child side: the worker process's entry point: runs one task and writes its record as JSON.

Usage: ``python -m distbench.worker SPEC.json RECORD.json [TASK]``, TASK one of
:data:`distbench.scenarios.tasks.TASKS` (``cell`` by default); or ``python -m
distbench.worker serve``: this process serves its ``TF_CONFIG`` task of a parameter-server
cluster until it is killed (``distbench serve`` execs it). Started by the launchers,
one process per cell, so that each cell gets its own device set-up and its own memory
peak. Whatever happens, the worker writes a record (ok, skipped or error) unless it is
killed. This module, its arguments and its record are the stable interface between a
parent and a code tree (``check --against`` starts another revision's workers with it).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from distbench.core import keras_extras
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.core.fileio import atomic_write_json
from distbench.core.records import failed
from distbench.scenarios import tasks
from distbench.scenarios.definition import WorkingTreeCode
from distbench.strategies import connect
from distbench.strategies.connect import ConnectTimeout
from distbench.trackers import cluster_faults
from distbench.trackers.cluster_faults import ClusterFault


def main(argv: list[str]) -> int:
    keras_extras.refuse()   # before anything imports TensorFlow (a forked worker's server did it too)
    if argv == ["serve"]:
        try:
            tasks.run("server", None)
        except UserError as exc:
            print(f"distbench: error: {exc}", file=sys.stderr)
            return 2
    spec_path, record_path, *rest = argv
    task = rest[0] if rest else "cell"
    connect.mark_joined_at(connect.joined_path(record_path))
    with open(spec_path) as f:
        spec = CellSpec.from_dict(json.load(f))
    cluster_faults.give_up_with(lambda reason: _give_up(spec, record_path, reason))
    try:
        try:
            record = tasks.run(task, spec)
        except WorkingTreeCode as exc:   # before UserError, whose kind it is
            record = _error(spec, str(exc), "working_tree")
        except UserError as exc:
            record = _error(spec, str(exc), "user_error")
        except ConnectTimeout as exc:
            record = _error(spec, str(exc), "timeout")
        except ClusterFault as exc:
            record = _error(spec, str(exc), "cluster")
    except Exception as exc:  # noqa: BLE001 - reported in the record, kept out of the numbers
        record = _error(spec, f"{type(exc).__name__}: {exc}".strip(), "exception")
        record["traceback"] = traceback.format_exc()
    record["worker_pid"] = os.getpid()
    atomic_write_json(record_path, record)
    return 0


def _error(spec, reason: str, kind: str) -> dict:
    return failed(spec, reason, error_kind=kind)


def _give_up(spec, record_path: str, reason: str) -> None:
    """A cluster fault's record, written from the listener's thread, and the process ended:
    the main thread waits inside TensorFlow for steps no worker is left to run."""
    atomic_write_json(record_path, {**_error(spec, reason, "cluster"), "worker_pid": os.getpid()})
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # The record is written: exit now, as the fork server's workers do, without waiting for a
    # thread left blocked inside TensorFlow (a TPU connect past its deadline) or its teardown.
    os._exit(code)
