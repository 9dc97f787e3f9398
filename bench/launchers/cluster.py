"""Parent side: launches a local cluster on 127.0.0.1: the tasks the cell's strategy
adapter names (``local_tasks``): N MultiWorkerMirroredStrategy workers, or a
ParameterServerStrategy coordinator with N workers and M parameter servers.

Each task is ``python -m distbench.worker`` with its own ``TF_CONFIG`` and free port, in
its own process group; tasks that run the cell run task ``cell``, the others ``server``
(they serve until killed). The launcher watches them all: when any task dies (a server at
any time before the cell is done), or writes an error record (a peer's death surfaces as
``UnavailableError`` within a second), or the deadline passes, every task's group is
killed with SIGKILL (TensorFlow ignores SIGTERM) and the cell is reported as failed with
which task failed first and how. Nothing is left running. The first task that runs the
cell (worker 0, or the chief) writes the cell's record.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

from distbench.core import cpus
from distbench.core.config import CellSpec
from distbench.core.fileio import atomic_write_json
from distbench.core.records import CellRecord, failed, skipped
from distbench.launchers.process import (PORT_TAKEN, cell_env, how_it_ended, how_started, kill_group, output_tail,
                                        spawn, with_fatal_line)
from distbench.launchers.trees import CodeTree
from distbench.strategies import connect, for_spec, hardware
from distbench.strategies.slurm import SOURCE_ENV

POLL_S = 0.1


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (held open together while chosen)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_configs(ports: list[int], tasks: list[tuple[str, int, bool]] | None = None) -> list[dict]:
    """Each task's ``TF_CONFIG`` (``tasks``: (type, index, runs the cell); default: one
    worker per port), the cluster on 127.0.0.1 with one port per task."""
    tasks = tasks or [("worker", i, True) for i in range(len(ports))]
    cluster: dict[str, list[str]] = {}
    for (kind, _, _), port in zip(tasks, ports):
        cluster.setdefault(kind, []).append(f"127.0.0.1:{port}")
    return [{"cluster": cluster, "task": {"type": kind, "index": index}} for kind, index, _ in tasks]


def worker_threads(spec: CellSpec) -> CellSpec:
    """Splits the cores between the workers unless the user set thread counts.

    N workers on C cores oversubscribe the CPU if each takes C threads (TensorFlow's
    default); each gets max(1, C // N) intra-op and inter-op threads. Not under a
    parameter-server strategy: one inter-op thread left its remote steps waiting forever
    here (the coordinator's join never returned), and its coordinator and parameter
    servers mostly wait.
    """
    if spec.strategy == "parameter_server":
        return spec
    share = max(1, cpus.usable_cpus() // spec.workers)   # this process's CPUs, not the host's
    return spec.replace(
        intra_op_threads=spec.intra_op_threads or share,
        inter_op_threads=spec.inter_op_threads or share,
    )


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen
    record_path: str
    log_path: str
    started: dict
    kind: str = "worker"          # its TF_CONFIG task type
    serves: bool = False          # a server: runs until killed; its exit is a failure
    _record: dict | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.kind} {self.index}"

    def record(self) -> dict | None:
        """The worker's record, read once: the worker writes it atomically, so it is whole."""
        if self._record is None and os.path.exists(self.record_path):
            with open(self.record_path) as f:
                self._record = json.load(f)
        return self._record

    def failure(self) -> str | None:
        """Why this worker failed, once it has; None while it runs or after success."""
        code = self.proc.poll()
        if code is None:
            return None
        record = self.record()
        if record is not None and record.get("status") == "error":
            return f"{self.name} (pid {self.proc.pid}) failed: {record.get('reason', '')}"
        if self.serves or code != 0 or record is None:
            ended = f"{self.name} (pid {self.proc.pid}) {how_it_ended(code)}"
            if getattr(self.proc, "server_gone", lambda: False)():   # the cause, where the tasks share a fork server
                ended += f" (its fork server, pid {self.proc.server_pid}, had ended: it takes its workers with it)"
            return with_fatal_line(ended, self.log_path) if record is None else ended
        return None

    def skip(self) -> str | None:
        """Why this worker skipped the cell (its devices failed the probe), once it has."""
        record = self.record() if self.proc.poll() is not None else None
        if not record or record.get("status") != "skipped":
            return None
        return f"{self.name}: {record.get('reason', '')}"


def launch_cluster(
    spec: CellSpec, env: dict[str, str] | None = None, on_start: Callable[[list[int]], None] | None = None,
    tree: CodeTree | None = None,
) -> CellRecord:
    """Runs ``spec`` on a local cluster of its strategy's tasks; returns the chief's record or an error.

    The ports are chosen free, then let go for the tasks to bind: another process can take
    one in between. A cluster that failed only because a task could not bind its port is
    started again on new ports (at most :data:`PORT_ATTEMPTS` times), and the record says so."""
    spec = worker_threads(spec)
    env = cell_env(spec, env)
    tasks = for_spec(spec).local_tasks()
    computing = [k for k, (kind, _, _) in enumerate(tasks) if kind == "worker"]
    visible = [None] * len(tasks)
    visible_here = (env or {}).get("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"))
    for k, gpus in zip(computing, gpu_assignment(len(computing), len(hardware.detect().gpus), visible_here)):
        visible[k] = gpus
    taken: list[str] = []
    while True:
        with tempfile.TemporaryDirectory(prefix="distbench-cluster-") as tmp:
            workers, outcome, wall = _run_once(spec, env, tasks, visible, tmp, tree, on_start)
            if outcome and not isinstance(outcome, Skipped) and _port_taken(workers) \
                    and len(taken) + 1 < PORT_ATTEMPTS:
                taken.append(outcome)
                continue
            record = _record(spec, workers, outcome, wall, [v for k, v in enumerate(visible) if k in computing])
        if taken:
            record.setdefault("strategy", {}).setdefault("notes", []).append(
                f"started again on new ports {len(taken)} time{'s' * (len(taken) > 1)}: a port chosen for a task was "
                f"taken before it bound it ({taken[0][:300]})")
        return record


PORT_ATTEMPTS = 3


def _port_taken(workers: list[_Worker]) -> bool:
    """Whether a task failed because it could not bind its port (its record or its log says so)."""
    said = ["\n".join(((w.record() or {}).get("reason", ""), output_tail(w.log_path))) for w in workers
            if w.failure()]
    return any(sign in text for text in said for sign in PORT_TAKEN)


def _run_once(spec: CellSpec, env, tasks, visible, tmp: str, tree, on_start):
    """Starts every task on free ports and watches them: (the workers, the outcome, the wall time)."""
    spec_path = os.path.join(tmp, "spec.json")
    atomic_write_json(spec_path, spec.to_dict())
    workers: list[_Worker] = []
    started = time.monotonic()
    try:
        # Started inside the try: if a later worker cannot start (or Ctrl-C comes),
        # the ones already running are killed, not left to their deadline.
        for k, config in enumerate(tf_configs(free_ports(len(tasks)), tasks)):
            gpus = {"CUDA_VISIBLE_DEVICES": visible[k]} if visible[k] is not None else {}
            workers.append(_start(k, config, spec_path, tmp, {**(env or {}), **gpus}, tree, serves=not tasks[k][2]))
        if on_start:
            on_start([w.proc.pid for w in workers])
        outcome = _watch(workers, spec.deadline_s, tree is None or tree.root is None)
    finally:
        for w in workers:
            kill_group(w.proc)
    return workers, outcome, time.monotonic() - started


def _record(spec: CellSpec, workers: list[_Worker], outcome, wall: float, visible: list) -> CellRecord:
    """The cell's record from its tasks': the chief's, or a skip or an error naming the task."""
    summaries = [_summary(w) for w in workers]
    if isinstance(outcome, Skipped):
        return skipped(spec, str(outcome)) | {"workers": summaries, "wall_s": wall}
    if outcome:
        return failed(spec, outcome, error_kind="cluster", workers=summaries, wall_s=wall,
                      output_tail="\n".join(f"--- {w.name}\n{output_tail(w.log_path)[-800:]}" for w in workers))
    first = next(w for w in workers if not w.serves)
    chief = first.record()
    chief["workers"] = summaries
    chief["started"] = first.started
    if any(v is not None for v in visible):
        chief.setdefault("strategy", {}).setdefault("notes", []).append(gpu_note(visible))
        chief["strategy"]["gpus_per_worker"] = [v for v in visible if v is not None]   # the GPUs it used
    chief["process_wall_s"] = wall
    return chief


def gpu_assignment(workers: int, gpus: int, visible: str | None = None) -> list[str | None]:
    """Each local worker's ``CUDA_VISIBLE_DEVICES``: with at least as many GPUs as workers,
    an equal share of its own (the remainder unused); with fewer, one GPU each, shared in
    turn; None for every worker without GPUs. Without it every worker would see every GPU:
    workers x GPUs replicas, each GPU shared by all. ``visible``: this process's own
    ``CUDA_VISIBLE_DEVICES``, whose devices the shares are taken from (``2,3``: workers get
    2 and 3, not the machine's GPUs 0 and 1, which may be another job's)."""
    ids = hardware.visible_gpu_ids(visible, gpus)
    if not ids:
        return [None] * workers
    if len(ids) >= workers:
        share = len(ids) // workers
        return [",".join(ids[i * share:(i + 1) * share]) for i in range(workers)]
    return [ids[i % len(ids)] for i in range(workers)]


def gpu_note(visible: list[str | None]) -> str:
    shared = len(set(visible)) < len(visible)
    return ("GPUs per worker (CUDA_VISIBLE_DEVICES): " + "; ".join(f"worker {i}: {v}" for i, v in enumerate(visible))
            + (" (fewer GPUs than workers: some are shared)" if shared else ""))


def _start(k: int, config: dict, spec_path: str, tmp: str, env: dict[str, str] | None,
           tree: CodeTree | None = None, serves: bool = False) -> _Worker:
    record_path = os.path.join(tmp, f"record-{k}.json")
    log_path = os.path.join(tmp, f"task-{k}.log")
    env = {"TF_CONFIG": json.dumps(config), SOURCE_ENV: "local", **(env or {})}
    proc = spawn([spec_path, record_path] + (["server"] if serves else []), log_path, env, tree)
    task = config["task"]
    return _Worker(task["index"], proc, record_path, log_path, how_started(proc, env, tree), task["type"], serves)


class Skipped(str):
    """Why the cluster stopped without a result: a worker skipped the cell."""


def _watch(workers: list[_Worker], deadline_s: float, marks: bool = True) -> str | None:
    """Waits for every worker; returns why the cluster failed (a :class:`Skipped` when a
    worker skipped the cell: its peers would wait for it in their first collective), or
    None on success."""
    deadline = time.monotonic() + deadline_s
    while True:
        # Whether all have ended, asked before their records are read: a task that writes an
        # error record and ends between the two is read on the next round, not passed over.
        ended = all(w.proc.poll() is not None for w in workers if not w.serves)
        skips = [why for w in workers if (why := w.skip())]
        if skips:
            return Skipped("; ".join(skips))
        failures = [(w, why) for w in workers if (why := w.failure())]
        if failures:
            # A crashed worker is the cause; its peers' UnavailableErrors are the effect.
            crashed = [why for w, why in failures if w.proc.returncode != 0 or w.record() is None]
            return "; ".join(crashed + [why for _, why in failures if why not in crashed])
        if ended:
            return None
        if time.monotonic() > deadline:
            return _timed_out(workers, deadline_s, marks)
        time.sleep(POLL_S)


def _timed_out(workers: list[_Worker], deadline_s: float, marks: bool) -> str:
    """Why a cluster past its deadline failed: its tasks that had not joined the cluster
    wait for a peer; when all had, the cell itself outlasted its deadline (it had read as a
    silent peer). ``marks``: whether the tasks' distbench marks joining (another version's
    tree may not)."""
    running = [w for w in workers if not w.serves and w.proc.poll() is None]
    waiting = [w.name for w in running if not os.path.exists(connect.joined_path(w.record_path))]
    if not marks or not running:
        why = "a peer or parameter server that never answered keeps it waiting, or the cell outlasts --deadline"
    elif waiting:
        why = (f"{', '.join(waiting)} had not joined the cluster: a peer or parameter server that never answered "
               "keeps it waiting")
    else:
        why = ("each had joined the cluster: the cell outlasts --deadline, or a task is slow or hung after joining, "
               "building its model or reading its data (each task's last output lines, in the record's output_tail, "
               "say where it was; give a longer deadline, or fewer steps)")
    names = ", ".join(f"{w.name} (pid {w.proc.pid})" for w in workers)
    return (f"timed out after {deadline_s:g} s with {', '.join(w.name for w in running) or 'no task'} still "
            f"running ({why}); {names} killed with SIGKILL")


def _summary(w: _Worker) -> dict:
    record = w.record() or {}
    return {
        "task": w.kind,
        "index": w.index,
        "pid": w.proc.pid,
        "exit": how_it_ended(w.proc.returncode) if w.proc.returncode is not None else "running",
        "status": record.get("status", "served" if w.serves else "no record"),
        "reason": record.get("reason", ""),
        "started": w.started,
        # Each worker's own time in its cell and where it went: a straggler shows here.
        **({"wall_s": record["wall_s"]} if "wall_s" in record else {}),
        **({"phases": record["phases"]} if "phases" in record else {}),
        **({"traceback": record["traceback"]} if record.get("traceback") else {}),
    }
