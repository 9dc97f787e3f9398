"""Parent side: starts worker processes, the one way every cell and cluster worker starts.

:func:`spawn` starts a worker (:mod:`distbench.worker`) in a new process group that dies with
this process (Linux's parent-death signal), either through the fork server
(:mod:`distbench.scenarios.forkserver`, TensorFlow already imported: saves its 4-7 s import per cell)
or as a fresh interpreter. ``DISTBENCH_SPAWN=exec`` forces fresh interpreters, as does a
fork server that cannot start.

A worker's environment takes effect as it would in a fresh interpreter, for variables read
when Python, TensorFlow, oneDNN or OpenMP start (``TF_ENABLE_ONEDNN_OPTS``, ``OMP_NUM_THREADS``,
``PYTHONPATH``...): there is one fork server per distinct environment, started with it
(:func:`distbench.launchers.forkserver.server_for`). Only the variables set per process that
TensorFlow reads later, or nothing reads at start-up (``forkserver.LATE_ENV``: ``TF_CONFIG``,
the lockstep channel, pytest's ``PYTEST_CURRENT_TEST``, a version's paths), are set in the forked child. Each
record says how its worker started (``started``).

TensorFlow ignores SIGTERM in these processes, so a worker that passes its deadline (or
is abandoned by Ctrl-C) is killed with SIGKILL, together with its whole process group;
nothing is left behind. A worker that dies without a record is reported with its exit
code or signal and the tail of its output.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

from distbench.core import keras_flavour
from distbench.core.config import CellSpec
from distbench.core.fileio import atomic_write_json
from distbench.core.processes import die_with_parent
from distbench.core.records import CellRecord, failed
from distbench.launchers import forkserver
from distbench.launchers.forkserver import LATE_ENV, WORKER_ENV, start_env
from distbench.launchers.trees import CodeTree
from distbench.strategies import connect, for_spec, hardware, slurm
from distbench.strategies.hardware import Hardware
from distbench.strategies.multi_worker import tf_config

TAIL_CHARS = 2000


def spawn(argv: list[str], log_path: str, env: dict[str, str] | None = None, tree: CodeTree | None = None):
    """Starts a worker (``distbench.worker *argv``) with its output in ``log_path``.

    ``tree`` is the code the worker runs and the folder it starts in (default: the installed
    distbench, in this working directory; ``check --against`` passes another revision's,
    :class:`~distbench.launchers.trees.CodeTree`). Returns a process with ``pid``,
    ``poll()``, ``wait(timeout)`` and ``returncode`` (a ``subprocess.Popen`` or a fork
    server's :class:`~distbench.launchers.forkserver.ForkedProcess`); its pid is its process group.
    """
    tree = tree or CodeTree()
    env = {**WORKER_ENV, **(env or {})}
    # The whole environment its interpreter starts with: a fork server's key, and what the
    # server's child checks its own against.
    whole = tree.environ(env)
    start = start_env(whole)
    server = forkserver.server_for(tree.code, start)
    proc = None
    if server is not None:
        try:
            proc = server.spawn(argv, {k: v for k, v in whole.items() if k in LATE_ENV}, start, log_path, tree.cwd())
        except OSError:
            forkserver.discard(server)   # it died or stopped answering: this worker starts fresh
    if proc is None:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                tree.command(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=whole, cwd=tree.cwd(),
                start_new_session=True, preexec_fn=die_with_parent,
            )
    with _live_lock:
        _live.add(proc)
        stopping = _stopping.is_set()
    if stopping:   # started after kill_all (it waited for its fork server): it goes too
        _kill(proc)
    return proc


# Workers started and not yet reaped: Ctrl-C in the parent kills them at once (they run in
# their own sessions, so the terminal's SIGINT never reaches them).
_live: set = set()
_live_lock = threading.Lock()
_stopping = threading.Event()


def kill_all() -> None:
    """SIGKILLs the process group of every worker not yet reaped, and of any started until
    :func:`resume`; whoever waits on one then returns at once (an interrupted parent stops
    its workers instead of waiting for them)."""
    with _live_lock:
        _stopping.set()
        procs = list(_live)
    for proc in procs:
        _kill(proc)
    forkserver.stop_starting()   # a thread waiting for one would wait out its import


def resume() -> None:
    """Workers may start again (after :func:`kill_all`'s callers have collected theirs)."""
    _stopping.clear()


def _kill(proc) -> None:
    """SIGKILLs ``proc``'s process group; or, when it has none yet, ``proc`` itself. A
    fork server's child makes its group (``setsid``) first thing after the fork, but the
    parent may already hold its pid: Ctrl-C in that moment found no group, the worker lived
    on and its lockstep partner's parent waited for it until its deadline."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
        return
    except PermissionError:
        return
    except ProcessLookupError:
        pass
    if proc.poll() is None:   # not reported ended (its pid cannot have been reused)
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def how_started(proc, env: dict[str, str], tree: CodeTree | None) -> dict:
    """How a worker was started, for its record: fork server or fresh interpreter, the
    environment it started with (beyond distbench's own quieting, unless a side set those
    variables to other values: they had been left out) and its folder."""
    forked = isinstance(proc, forkserver.ForkedProcess)
    return {"mode": "fork" if forked else "exec",
            **({"server_pid": proc.server_pid} if forked else {}),
            # The Keras flavour's variable is the cell's own (its record's ``keras``).
            "env": {k: v for k, v in start_env(env).items() if WORKER_ENV.get(k) != v and k != keras_flavour.ENV},
            "cwd": (tree or CodeTree()).cwd()}


def cell_env(spec: CellSpec, env: dict[str, str] | None) -> dict[str, str]:
    """A worker's extra environment: ``env`` and the variable of the cell's Keras flavour,
    set when the process starts (a tf_keras cell's workers come from their own fork server)."""
    return {**(env or {}), **keras_flavour.environment(spec.keras)}


def launch(spec: CellSpec, env: dict[str, str] | None = None, task: str = "cell", tree: CodeTree | None = None) -> CellRecord:
    """Runs ``spec`` in a new process; returns its record, or an error record.

    ``task`` is what the worker does with it: ``cell`` (run it) or ``overhead``.
    """
    env = cell_env(spec, env)
    with tempfile.TemporaryDirectory(prefix="distbench-") as tmp:
        spec_path = os.path.join(tmp, "spec.json")
        record_path = os.path.join(tmp, "record.json")
        log_path = os.path.join(tmp, "worker.log")
        atomic_write_json(spec_path, spec.to_dict())
        started = time.monotonic()
        proc = spawn([spec_path, record_path, task], log_path, env, tree)
        # A source tree of another distbench marks nothing; the installed one does, for any workdir.
        joins = for_spec(spec).joins() if task == "cell" and (tree is None or tree.root is None) else None
        # Joining within the connect deadline, and within the cell's own (it had waited the
        # connect deadline past a shorter --deadline: 180 s by default, whatever CI set)
        join_s = min(spec.connect_deadline_s, spec.deadline_s)
        never_joined = joins and _unjoined(proc, connect.joined_path(record_path), join_s)
        timed_out = never_joined or _wait(proc, max(0.0, spec.deadline_s - (time.monotonic() - started)))
        wall = time.monotonic() - started
        how = how_started(proc, env or {}, tree)
        if never_joined:
            within = (f"{join_s:g} s (--connect-deadline)" if join_s == spec.connect_deadline_s else
                      f"the cell's {join_s:g} s (--deadline)")
            return failed(spec, f"{joins} did not finish within {within}; "
                          f"{JOIN_CAUSES}{for_spec(spec).silent_peers()}; worker pid {proc.pid} and its process group "
                          "killed with SIGKILL",
                          error_kind="timeout", wall_s=wall, output_tail=output_tail(log_path), started=how)
        if timed_out:
            return failed(
                spec, f"timed out after {spec.deadline_s:g} s; worker pid {proc.pid} and its "
                "process group killed with SIGKILL", error_kind="timeout", wall_s=wall,
                output_tail=output_tail(log_path), started=how,
            )
        if os.path.exists(record_path):
            with open(record_path) as f:
                record = json.load(f)
            record["process_wall_s"] = wall   # start-up and exit included, as the parent saw it
            record["started"] = how
            return _with_address(record)
        server = getattr(proc, "server_gone", None)   # a forked worker ends with its fork server
        gone = f" (its fork server, pid {proc.server_pid}, had ended: it takes its workers with it)" \
            if server and server() else ""
        return failed(
            spec, with_fatal_line(f"worker pid {proc.pid} {how_it_ended(proc.returncode)} without writing a record"
                                  f"{gone}", log_path),
            error_kind="crash", wall_s=wall, output_tail=output_tail(log_path), started=how,
        )


PORT_TAKEN = ("Could not start gRPC server", "Address already in use")


def _with_address(record: dict) -> dict:
    """A task of a real cluster that could not listen at its address, said with the address
    and where it came from: "UnknownError: Could not start gRPC server" named neither, and
    under SLURM the user never typed a port."""
    config, reason = tf_config(), str(record.get("reason", ""))
    if not config or record.get("status") == "ok" or not any(sign in reason for sign in PORT_TAKEN):
        return record
    kind, index = config["task"]["type"], config["task"]["index"]
    source = ("the SLURM job step's ports start at DISTBENCH_SLURM_PORT_BASE, 8888 unless set: give a free one"
              if slurm.source() == "slurm" else "TF_CONFIG gives it: free that port or give another")
    return {**record, "reason": f"{reason} ({kind} {index} could not listen at {config['cluster'][kind][index]}: is "
                                f"the port in use on this machine? {source})"}


MACHINE_DEADLINE_S = 300.0
DATA_DEADLINE_S = 300.0   # the Keras loader's own wait is shorter (workloads.data.keras_timeout_s, at most 240 s)


def machine(env: dict[str, str] | None = None) -> Hardware:
    """This machine's devices. Listed by a worker when this process has not imported
    TensorFlow: the parent of a run then never pays for its import (4-7 s here), and the
    worker comes from the fork server its cells start from (``env``: that server's extra
    environment). Listed in this process when TensorFlow is here already, or when that
    worker failed (its cells will say why)."""
    if hardware.known():
        return hardware.detect()
    spec = CellSpec(workload="machine", strategy="default", loop=None, deadline_s=MACHINE_DEADLINE_S)
    record = launch(spec, env, task="machine")
    if record.get("status") == "ok":
        return hardware.adopt(record["machine"])
    return hardware.detect()


def data_source(spec: CellSpec) -> tuple[str, str] | None:
    """What ``auto`` data means for ``spec``'s workload here, as ``(source, why not Keras's
    dataset)``, asked of a worker when this process has not imported TensorFlow (trying a
    Keras loader imports it; the loader's download line stays in the worker's log). None
    when TensorFlow is here already or the worker failed: the caller asks in this process."""
    if "tensorflow" in sys.modules or "keras" in sys.modules:
        return None
    plain = spec.replace(strategy="default", target=None, init_seed=None, keras="keras3",
                         deadline_s=DATA_DEADLINE_S)
    record = launch(plain, task="data")
    return (record["data"], record["why"]) if record.get("status") == "ok" else None


JOIN_CAUSES = ("a worker that has not started (each runs the same `distbench run`), has stopped, or cannot be reached "
               "from here keeps the others waiting")


def _unjoined(proc: subprocess.Popen, marker: str, deadline_s: float) -> bool:
    """Waits until ``proc`` ends or marks ``marker`` (its strategy made); at ``deadline_s``
    without either, kills its group and returns True."""
    deadline = time.monotonic() + deadline_s
    try:
        while proc.poll() is None and not os.path.exists(marker):
            if time.monotonic() > deadline:
                kill_group(proc)
                return True
            time.sleep(0.2)
    except BaseException:   # Ctrl-C: the worker goes now, as from _wait
        kill_group(proc)
        raise
    return False


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
    _kill(proc)
    proc.wait()
    with _live_lock:
        _live.discard(proc)


def how_it_ended(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


def output_tail(path: str, chars: int = TAIL_CHARS) -> str:
    """The last ``chars`` of a worker's output; "" when it never opened its log (a forked
    child that ended before it could, its server gone): the error record still says how the
    worker ended, rather than the run ending in a traceback."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - chars))
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


# A fatal line of TensorFlow's C++ (absl's LOG(FATAL) and CHECK, which then abort the process):
# "F0000 00:00:1796441016.132920    7909 env.cc:84] Check failed: ret == 0 (11 vs. 0) Thread
# tf_Compute creation via pthread_create() failed." (TensorFlow 2.16+), "2023-05-01
# 10:00:00.000000: F tensorflow/core/...cc:73] ..." (before), or any "Check failed:".
FATAL_LINE = re.compile(r"^F\d{4} \d\d:\d\d:|\sF \S+\.\w+:\d+\] |Check failed:")
FATAL_CHARS = 300       # the line as the reason says it: the check and its message, not a page
FATAL_WINDOW = 65536    # how far back to look: a check's stack trace follows it (~1,300 characters)


def fatal_line(path: str) -> str | None:
    """The last fatal line of a worker's output at ``path`` (None when there is none), its
    runs of spaces made one, cut to :data:`FATAL_CHARS`."""
    for line in reversed(output_tail(path, FATAL_WINDOW).splitlines()):
        if FATAL_LINE.search(line):
            line = " ".join(line.split())
            return line if len(line) <= FATAL_CHARS else line[:FATAL_CHARS - 3] + "..."
    return None


def with_fatal_line(reason: str, path: str) -> str:
    """``reason`` for a worker that ended without a record, with the cause when its output
    names one: a process TensorFlow aborted says only SIGABRT, its fatal line says why."""
    found = fatal_line(path)
    return f"{reason}; its last fatal line: {found}" if found else reason
