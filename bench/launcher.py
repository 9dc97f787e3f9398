"""Runs a cell in a fresh worker process under a deadline.

TensorFlow ignores SIGTERM in these processes, so a worker that passes its deadline
(or is abandoned by Ctrl-C) is killed with SIGKILL, together with its whole process
group; nothing is left behind. A worker that dies without a record is reported with
its exit code or signal and the tail of its output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from bench.config import CellSpec
from bench.fileio import atomic_write_json, project_root
from bench.records import CellRecord, failed

# Quiet TensorFlow's C++ start-up chatter in workers; their output is kept for errors.
WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
TAIL_CHARS = 2000


def launch(spec: CellSpec, env: dict[str, str] | None = None, task: str = "cell") -> CellRecord:
    """Runs ``spec`` in a new process; returns its record, or an error record.

    ``task`` is what the worker does with it: ``cell`` (run it) or ``overhead``.
    """
    with tempfile.TemporaryDirectory(prefix="distbench-") as tmp:
        spec_path = os.path.join(tmp, "spec.json")
        record_path = os.path.join(tmp, "record.json")
        log_path = os.path.join(tmp, "worker.log")
        atomic_write_json(spec_path, spec.to_dict())
        started = time.monotonic()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.worker", spec_path, record_path, task],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **WORKER_ENV, **(env or {})},
                cwd=project_root(), start_new_session=True,
            )
            timed_out = _wait(proc, spec.deadline_s)
        wall = time.monotonic() - started
        if timed_out:
            return failed(
                spec, f"timed out after {spec.deadline_s:g} s; worker pid {proc.pid} and its "
                "process group killed with SIGKILL", error_kind="timeout", wall_s=wall,
                output_tail=output_tail(log_path),
            )
        if os.path.exists(record_path):
            with open(record_path) as f:
                return json.load(f)
        return failed(
            spec, f"worker pid {proc.pid} {how_it_ended(proc.returncode)} without writing a record",
            error_kind="crash", wall_s=wall, output_tail=output_tail(log_path),
        )


def _wait(proc: subprocess.Popen, deadline_s: float) -> bool:
    """Waits for ``proc``; kills its group at the deadline. Returns True if it timed out."""
    try:
        proc.wait(timeout=deadline_s)
        return False
    except subprocess.TimeoutExpired:
        return True
    finally:
        kill_group(proc)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILLs ``proc``'s process group (TensorFlow ignores SIGTERM) and reaps it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def how_it_ended(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


def output_tail(path: str) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - TAIL_CHARS))
        return f.read().decode("utf-8", "replace")
