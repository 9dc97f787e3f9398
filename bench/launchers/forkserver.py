"""Parent side: the client of the fork server (:mod:`distbench.scenarios.forkserver`).

Importing TensorFlow and Keras takes 4-7 s here; a fork server per code tree imports
them once and forks a fresh worker per request. ``DISTBENCH_SPAWN=exec`` turns it off
(fresh interpreters), as does a platform without ``fork``; a server that cannot start is
not tried again for its tree.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import threading

from distbench.core.errors import UserError
from distbench.launchers.trees import CodeTree

# Quiet TensorFlow's C++ start-up chatter in workers; their output is kept for errors.
WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
SPAWN_MODES = ("fork", "exec")


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
    """The parent's handle on one :mod:`distbench.scenarios.forkserver` process."""

    def __init__(self, tree: CodeTree) -> None:
        # The installed tree's fork server, run as a script, serves any code tree: it
        # imports TensorFlow, Keras and the served tree's worker, and forks.
        self.tree = tree
        # No parent-death signal here: Linux sends it when the *thread* that started the
        # server ends, and lockstep pairs start it from short-lived threads. The server
        # ends when its input does, which the kernel closes when this process dies, and
        # its workers' own signal (set in its one thread) then ends them.
        self._proc = subprocess.Popen(
            tree.server_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=tree.environ(WORKER_ENV), cwd=tree.cwd(),
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
        request = {"argv": argv, "env": env, "cwd": self.tree.cwd(), "log": log_path}
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


_servers: dict[CodeTree, ForkServer] = {}
_failed: set[CodeTree] = set()
_servers_lock = threading.Lock()   # lockstep pairs spawn from two threads at once


def server_for(tree: CodeTree) -> ForkServer | None:
    """The fork server for ``tree``, started on first use (None: spawn fresh interpreters)."""
    mode = os.environ.get("DISTBENCH_SPAWN", "fork")
    if mode not in SPAWN_MODES:
        raise UserError(f"Unknown DISTBENCH_SPAWN {mode!r}. Known: {', '.join(SPAWN_MODES)}.")
    if mode == "exec" or tree in _failed or not sys.platform.startswith("linux"):
        return None
    with _servers_lock:
        server = _servers.get(tree)
        if server is None or not server.alive():
            try:
                server = _servers[tree] = ForkServer(tree)
                atexit.register(server.close)
            except (OSError, ValueError):
                _failed.add(tree)
                return None
        return server


def release(root: str) -> None:
    """Stops the fork server of ``root`` (a code tree about to be removed), if one runs."""
    server = _servers.pop(CodeTree(root), None)
    if server is not None:
        server.close()
