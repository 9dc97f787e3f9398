"""Child side: a fork server that has imported TensorFlow once, for fresh worker processes.

Importing TensorFlow and Keras takes 4-7 s on the project's 2-core machine, longer than
many cells' steady state. TensorFlow's device set-up is once per *runtime*, and importing
TensorFlow does not start the runtime (no device is listed, no thread pool is made). So
this server imports them, then forks one child per request: each child is a new process
with a fresh, uninitialised runtime, which sets up its own devices exactly as a freshly
started interpreter would, without paying for the import again.

Protocol (one JSON object per line): the parent writes ``{"argv", "env", "cwd", "log"}``;
the server answers ``{"pid": N}`` and, when that child ends, ``{"exit": N, "code": C}``
(C < 0: killed by signal -C, as ``Popen.returncode``). The server and its children die
with the parent: the server on end of input (the kernel closes the pipe when the
parent dies, however it dies); each child by its own parent-death signal, asked for in
the server's one thread, when the server goes.

Run as a script (``python .../bench/forkserver.py``, with the code tree to serve first on
``PYTHONPATH``); started by :mod:`bench.launcher`, never by hand, one per code tree. It
imports the served tree's worker code (from ``PYTHONPATH``, not its own folder), so one
tree's server script can serve another tree's workers.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import traceback

POLL_S = 0.05


def die_with_parent() -> None:
    """Asks Linux to SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)   # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass   # not Linux: the launcher's own kill on exit still applies


def _child(request: dict) -> None:
    """In the forked child: become a worker process as if freshly started, run, exit."""
    server = os.getppid()
    try:
        os.setsid()
        die_with_parent()
        if os.getppid() != server:   # the server died before the signal was asked for
            os._exit(1)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, 1 << 16)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        sys.argv = ["bench.worker", *request["argv"]]
        from bench import worker

        code = worker.main(request["argv"])
    except BaseException:  # noqa: BLE001 - the child must never return into the server's loop
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _reap(out) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        _send(out, {"exit": pid, "code": code})


def _send(out, message: dict) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def serve(inp, out) -> None:
    """Forks a worker per request line until the input ends; reports each child's exit."""
    pending = ""
    while True:
        ready, _, _ = select.select([inp], [], [], POLL_S)
        _reap(out)
        if not ready:
            continue
        chunk = os.read(inp.fileno(), 65536).decode()
        if not chunk:
            return   # the parent closed the pipe (or died): stop serving
        pending += chunk
        while "\n" in pending:
            line, pending = pending.split("\n", 1)
            pid = os.fork()
            if pid == 0:
                _child(json.loads(line))
            _send(out, {"pid": pid})


def main() -> int:
    # Run as a script, Python put this folder (bench/) first on sys.path, where its
    # modules (stats, config, ...) could shadow others' top-level names: take it out.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    import keras  # noqa: F401 - the point: imported once, before any fork
    import tensorflow  # noqa: F401

    # The served tree's worker code too: every worker of a run then runs the code as it was
    # when the run started, not whatever the files hold when it forks (an edit during a run
    # would otherwise reach its later cells). A tree that cannot import is left to fail in
    # its workers, where the error is recorded.
    try:
        import bench.cell  # noqa: F401
        import bench.worker  # noqa: F401
    except Exception:  # noqa: BLE001
        pass

    _send(sys.stdout, {"ready": os.getpid()})
    serve(sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
