"""Parent side: starts worker processes, the one way every cell and cluster worker starts.

:func:`spawn` starts ``python -m bench.worker ...`` in a new process group that dies with
this process (Linux's parent-death signal), either through the fork server
(:mod:`bench.forkserver`, TensorFlow already imported: saves its 4-7 s import per cell)
or as a fresh interpreter. ``DISTBENCH_SPAWN=exec`` forces fresh interpreters; an extra
environment that changes how Python starts (``PYTHON*``) gets one too, as does any spawn
when the fork server cannot start.

TensorFlow ignores SIGTERM in these processes, so a worker that passes its deadline (or
is abandoned by Ctrl-C) is killed with SIGKILL, together with its whole process group;
nothing is left behind. A worker that dies without a record is reported with its exit
code or signal and the tail of its output.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

from bench.config import CellSpec
from bench.fileio import atomic_write_json, project_root
from bench.records import CellRecord, failed

# Quiet TensorFlow's C++ start-up chatter in workers; their output is kept for errors.
WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
TAIL_CHARS = 2000
SPAWN_MODES = ("fork", "exec")


def spawn(argv: list[str], log_path: str, env: dict[str, str] | None = None, root: str | None = None):
    """Starts ``python -m bench.worker *argv`` with its output in ``log_path``.

    ``root`` is the code tree the worker runs (default: this one; ``check --against``
    passes a git worktree of another revision). Returns a process with ``pid``,
    ``poll()``, ``wait(timeout)`` and ``returncode`` (a ``subprocess.Popen`` or a fork
    server's child); its pid is its process group.
    """
    root = root or project_root()
    env = {**WORKER_ENV, **(env or {})}
    server = None if any(_needs_exec(k) for k in env) else _fork_server(root)
    if server is not None:
        return server.spawn(argv, env, log_path)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.worker", *argv],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **env, "PYTHONPATH": _python_path(root, env.get("PYTHONPATH"))}, cwd=root,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


# Read when an interpreter starts (PYTHON*) or when the CUDA runtime starts, which a
# fork server's child could not change any more: such workers start fresh.
EXEC_ENV = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")


def _needs_exec(name: str) -> bool:
    return (name.startswith("PYTHON") and name != "PYTHONUNBUFFERED") or name in EXEC_ENV


def _python_path(root: str, extra: str | None = None) -> str:
    """``root`` first, so that its ``bench`` is the one imported, then the worker's own
    ``PYTHONPATH`` (``extra``) and this process's."""
    return os.pathsep.join([root, *filter(None, [extra, os.environ.get("PYTHONPATH")])])


def _die_with_parent() -> None:
    from bench.forkserver import die_with_parent

    die_with_parent()


class ForkedProcess:
    """A worker forked by the fork server: the parts of ``Popen`` the launchers use."""

    def __init__(self, pid: int, server: "ForkServer") -> None:
        self.pid = pid
        self._server = server
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._server.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self._server.wait_exit(self.pid, timeout) is None:
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
        return self.poll()


class ForkServer:
    """The parent's handle on one :mod:`bench.forkserver` process."""

    def __init__(self, root: str) -> None:
        # This tree's fork server, run as a script, serves any code tree: it imports only
        # TensorFlow and Keras, and its children import ``bench`` from ``root``.
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "forkserver.py")
        self.root = root
        # No parent-death signal here: Linux sends it when the *thread* that started the
        # server ends, and lockstep pairs start it from short-lived threads. The server
        # ends when its input does, which the kernel closes when this process dies, and
        # its workers' own signal (set in its one thread) then ends them.
        self._proc = subprocess.Popen(
            [sys.executable, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env={**os.environ, **WORKER_ENV, "PYTHONPATH": _python_path(root)}, cwd=root,
            start_new_session=True, text=True,
        )
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._pids: list[int] = []
        self._exits: dict[int, int] = {}
        first = json.loads(self._proc.stdout.readline() or "{}")
        if "ready" not in first:
            raise OSError("the fork server did not start")
        self._reader = threading.Thread(target=self._read, name="distbench-forkserver", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            message = json.loads(line)
            with self._changed:
                if "pid" in message:
                    self._pids.append(message["pid"])
                else:
                    self._exits[message["exit"]] = message["code"]
                self._changed.notify_all()
        with self._changed:   # the server is gone (alive() says so): so are its children
            self._changed.notify_all()

    def alive(self) -> bool:
        return self._proc.poll() is None

    def spawn(self, argv: list[str], env: dict[str, str], log_path: str) -> ForkedProcess:
        request = {"argv": argv, "env": env, "cwd": self.root, "log": log_path}
        with self._lock, self._changed:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
            if not self._changed.wait_for(lambda: self._pids or not self.alive(), timeout=60) or not self._pids:
                raise OSError("the fork server did not answer")
            return ForkedProcess(self._pids.pop(0), self)

    def exit_code(self, pid: int) -> int | None:
        with self._changed:
            if pid not in self._exits and not self.alive():
                return -signal.SIGKILL   # died with the server
            return self._exits.get(pid)

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits or not self.alive(), timeout=timeout)
        return self.exit_code(pid)

    def close(self) -> None:
        if self.alive():
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._reader.join(timeout=5)   # it ends at the server's end of output
        if not self._reader.is_alive():
            self._proc.stdout.close()


_servers: dict[str, ForkServer] = {}
_failed_roots: set[str] = set()
_servers_lock = threading.Lock()   # lockstep pairs spawn from two threads at once


def _fork_server(root: str) -> ForkServer | None:
    """The fork server for ``root``, started on first use (None: spawn fresh interpreters)."""
    mode = os.environ.get("DISTBENCH_SPAWN", "fork")
    if mode not in SPAWN_MODES:
        from bench.errors import UserError

        raise UserError(f"Unknown DISTBENCH_SPAWN {mode!r}. Known: {', '.join(SPAWN_MODES)}.")
    if mode == "exec" or root in _failed_roots or not sys.platform.startswith("linux"):
        return None
    with _servers_lock:
        server = _servers.get(root)
        if server is None or not server.alive():
            try:
                server = _servers[root] = ForkServer(root)
                atexit.register(server.close)
            except (OSError, ValueError):
                _failed_roots.add(root)
                return None
        return server


def release(root: str) -> None:
    """Stops the fork server of ``root`` (a code tree about to be removed), if one runs."""
    server = _servers.pop(root, None)
    if server is not None:
        server.close()


def launch(spec: CellSpec, env: dict[str, str] | None = None, task: str = "cell", root: str | None = None) -> CellRecord:
    """Runs ``spec`` in a new process; returns its record, or an error record.

    ``task`` is what the worker does with it: ``cell`` (run it) or ``overhead``.
    """
    with tempfile.TemporaryDirectory(prefix="distbench-") as tmp:
        spec_path = os.path.join(tmp, "spec.json")
        record_path = os.path.join(tmp, "record.json")
        log_path = os.path.join(tmp, "worker.log")
        atomic_write_json(spec_path, spec.to_dict())
        started = time.monotonic()
        proc = spawn([spec_path, record_path, task], log_path, env, root)
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
                record = json.load(f)
            record["process_wall_s"] = wall   # start-up and exit included, as the parent saw it
            return record
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
