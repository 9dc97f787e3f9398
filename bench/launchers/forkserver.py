"""Parent side: the client of the fork server (:mod:`distbench.scenarios.forkserver`).

Importing TensorFlow and Keras takes 4-7 s here; a fork server imports them once and
forks a fresh worker per request. There is one server per code tree *and environment*:
TensorFlow, oneDNN and OpenMP read some variables when they load (``TF_ENABLE_ONEDNN_OPTS``
among them), so a child that only set them after the fork would run with the server's
values and record the variable as applied. A server starts with the environment its
workers ask for; its children are then what a fresh interpreter with that environment
would be (the server refuses a request whose environment differs from its own).
``DISTBENCH_SPAWN=exec`` turns servers off (fresh interpreters), as does a platform
without ``fork``; a server that cannot start is not tried again for its key.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import threading

from distbench.core.errors import UserError
from distbench.core.lockstep import ENV
from distbench.core.worktrees import VERSION_ENV
from distbench.launchers.trees import CodeTree
from distbench.strategies.slurm import SOURCE_ENV

# Quiet TensorFlow's C++ start-up chatter in workers; their output is kept for errors.
WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
SPAWN_MODES = ("fork", "exec")

# Set for one process and read by TensorFlow only when a strategy is made, long after
# import, or by nothing at start-up: safe to set in a forked child. ``PYTEST_CURRENT_TEST``
# changes with every test, so as part of a server's key it started a server (and paid
# TensorFlow's import, about 3 s) for every cell of ``pytest --benchmark-only``. Every
# other variable is part of the environment a fork server starts with.
LATE_ENV = (ENV, "TF_CONFIG", SOURCE_ENV, "PYTEST_CURRENT_TEST", VERSION_ENV)
# How long a server may take to import TensorFlow, Keras and the worker's code (5-9 s here)
# before its cells start from fresh interpreters instead, and how long its exit is waited for
# once its output has ended.
SERVER_START_S = 300.0
SERVER_EXIT_S = 10.0


def start_env(env: dict[str, str]) -> dict[str, str]:
    """The part of a worker's environment that must be there when its interpreter starts."""
    return {k: v for k, v in env.items() if k not in LATE_ENV}


class ForkedProcess:
    """A worker forked by the fork server: the parts of ``Popen`` the launchers use."""

    def __init__(self, pid: int, server: "ForkServer") -> None:
        self.pid = pid
        self._server = server
        self.returncode: int | None = None

    @property
    def server_pid(self) -> int:
        """The fork server it came from (the record's ``started``: one server per environment)."""
        return self._server.pid

    def server_gone(self) -> bool:
        """Whether its fork server has ended (killed, or died): its workers die with it."""
        return not self._server.alive()

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._server.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self._server.wait_exit(self.pid, timeout) is None:
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
        return self.poll()


class ForkServer:
    """The parent's handle on one :mod:`distbench.scenarios.forkserver` process."""

    def __init__(self, tree: CodeTree, env: dict[str, str]) -> None:
        # The installed tree's fork server, run as a script, serves any code tree: it
        # imports TensorFlow, Keras and the served tree's worker, and forks.
        self.tree = tree
        # No parent-death signal here: Linux sends it when the *thread* that started the
        # server ends, and lockstep pairs start it from short-lived threads. The server
        # ends when its input does, which the kernel closes when this process dies, and
        # its workers' own signal (set in its one thread) then ends them.
        self._proc = subprocess.Popen(
            tree.server_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env, cwd=tree.cwd(),
            start_new_session=True, text=True,
        )
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._pids: list[int] = []
        self._exits: dict[int, int] = {}
        _starting.add(self._proc)   # stop_starting() ends it: Ctrl-C reaches the main thread, not this one
        try:   # within a deadline: an import that hangs (a stalled file system) is not a run that hangs
            ready, _, _ = select.select([self._proc.stdout], [], [], SERVER_START_S)
            first = json.loads(self._proc.stdout.readline() or "{}") if ready else {}
        except ValueError:
            first = {}
        except BaseException:   # Ctrl-C: it went on importing TensorFlow, orphaned, at a core's full use
            self._stop_unstarted()
            raise
        finally:
            _starting.discard(self._proc)
        if "ready" not in first:
            self._stop_unstarted()
            raise OSError("the fork server did not start")
        self._reader = threading.Thread(target=self._read, name="distbench-forkserver", daemon=True)
        self._reader.start()

    def _stop_unstarted(self) -> None:
        self._proc.kill()
        self._proc.wait()
        self._proc.stdin.close()
        self._proc.stdout.close()

    def _read(self) -> None:
        for line in self._proc.stdout:
            message = json.loads(line)
            with self._changed:
                if "pid" in message:
                    self._pids.append(message["pid"])
                else:
                    self._exits[message["exit"]] = message["code"]
                self._changed.notify_all()
        try:   # its output ended: reaped first, so that alive() says so when the waiters wake
            self._proc.wait(timeout=SERVER_EXIT_S)
        except subprocess.TimeoutExpired:
            pass
        with self._changed:   # the server is gone (alive() says so): so are its children
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def spawn(self, argv: list[str], late: dict[str, str], start: dict[str, str], log_path: str,
              cwd: str) -> ForkedProcess:
        """Forks a worker in ``cwd`` with the ``late`` variables set; ``start``, the whole
        environment it must have started with, is checked against the server's own."""
        request = {"argv": argv, "env": late, "start": start, "cwd": cwd, "log": log_path}
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


_starting: set[subprocess.Popen] = set()   # servers importing TensorFlow, not yet ready


def stop_starting() -> None:
    """Kills the fork servers still starting (a lockstep pair's thread waits for one, which
    Ctrl-C in the main thread does not reach): their waits end at once, as failed starts."""
    for proc in list(_starting):
        proc.kill()


Key = tuple   # (CodeTree, the start-up environment as sorted items)
_servers: dict[Key, ForkServer] = {}
_failed: set[Key] = set()
_servers_lock = threading.Lock()   # lockstep pairs spawn from two threads at once


def server_for(tree: CodeTree, env: dict[str, str]) -> ForkServer | None:
    """The fork server of ``tree`` whose interpreter started with exactly ``env`` (the whole
    environment; started on first use; None: spawn a fresh interpreter)."""
    # ``env``'s own: an ab side's DISTBENCH_SPAWN=exec had been recorded and not honoured (an A/A run)
    mode = env.get("DISTBENCH_SPAWN", os.environ.get("DISTBENCH_SPAWN", "fork"))
    if mode not in SPAWN_MODES:
        raise UserError(f"Unknown DISTBENCH_SPAWN {mode!r}. Known: {', '.join(SPAWN_MODES)}.")
    key = (tree, tuple(sorted(env.items())))
    if mode == "exec" or key in _failed or not sys.platform.startswith("linux"):
        return None
    with _servers_lock:
        server = _servers.get(key)
        if server is None or not server.alive():
            try:
                server = _servers[key] = ForkServer(tree, env)
                atexit.register(server.close)
            except (OSError, ValueError):
                _failed.add(key)
                return None
        return server


def discard(server: ForkServer) -> None:
    """Forgets a server that failed a request, and stops it; its key starts fresh interpreters."""
    with _servers_lock:
        for key in [k for k, s in _servers.items() if s is server]:
            del _servers[key]
            _failed.add(key)
    server.close()


def release(root: str) -> None:
    """Stops the fork servers of ``root`` (a code tree about to be removed), if any run:
    its own, and those whose ``PYTHONPATH`` reaches into it (a user's revision, run with the
    installed distbench and ``PYTHONPATH=src``: one server per revision, each holding
    TensorFlow, for as long as a bisect ran)."""
    def inside(entry: str) -> bool:
        return entry == root or entry.startswith(root.rstrip(os.sep) + os.sep)

    with _servers_lock:
        for key in [k for k in _servers if k[0] == CodeTree(root)
                    or any(inside(e) for e in dict(k[1]).get("PYTHONPATH", "").split(os.pathsep))]:
            _servers.pop(key).close()
