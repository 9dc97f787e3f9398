"""Child side: a fork server that has imported TensorFlow once, for fresh worker processes.

Importing TensorFlow and Keras takes 4-7 s on the project's 2-core machine, longer than
many cells' steady state. TensorFlow's device set-up is once per *runtime*, and importing
TensorFlow does not start the runtime (no device is listed, no thread pool is made). So
this server imports them, then forks one child per request: each child is a new process
with a fresh, uninitialised runtime, which sets up its own devices exactly as a freshly
started interpreter would, without paying for the import again.

A server serves one environment: the one it started with, and so TensorFlow imported
with. A request names that start-up environment (``start``) and the variables to set in
the child (``env``, only those TensorFlow reads late, such as ``TF_CONFIG``); a child whose
``start`` differs from what the server imported with does not run (it exits with code 3,
saying which variables), so no worker can pretend a variable took effect.

Protocol (one JSON object per line): the parent writes ``{"argv", "start", "env", "cwd", "log"}``;
the server answers ``{"pid": N}`` and, when that child ends, ``{"exit": N, "code": C}``
(C < 0: killed by signal -C, as ``Popen.returncode``). The server and its children die
with the parent: the server on end of input (the kernel closes the pipe when the
parent dies, however it dies); each child by its own parent-death signal, asked for in
the server's one thread, when the server goes.

Run as a script by the installed tree (``python .../scenarios/forkserver.py --module M
[--map ROOT]``, :class:`distbench.launchers.trees.CodeTree`), never by hand, one per code
tree. It imports the served tree's worker module (``distbench.worker``, or
``bench.worker`` of a revision from before the one-namespace layout), so one tree's
server script can serve another tree's workers.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import select
import signal
import sys
import traceback

POLL_S = 0.05


def _child(request: dict) -> None:
    """In the forked child: become a worker process as if freshly started, run, exit."""
    server = os.getppid()
    try:
        os.setsid()
        die_with_parent()
        if os.getppid() != server:   # the server died before the signal was asked for
            os._exit(1)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        stale = sorted(k for k, v in request.get("start", {}).items() if IMPORTED_WITH.get(k) != v)
        if stale:
            os.write(log, (f"distbench fork server: this server's TensorFlow was imported without "
                           f"{', '.join(stale)} as asked; not running the worker\n").encode())
            os._exit(3)
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, 1 << 16)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        sys.argv = [WORKER.__name__, *request["argv"]]
        code = WORKER.main(request["argv"])
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


def _load_by_path(name: str, path: str):
    """A stdlib-only module of the installed tree (the served tree may be another one)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HERE = os.path.dirname(os.path.abspath(__file__))
die_with_parent = _load_by_path("_distbench_processes", os.path.join(HERE, os.pardir, "core", "processes.py")).die_with_parent
WORKER = None   # the served tree's worker module, imported once before any fork
IMPORTED_WITH: dict[str, str] = {}   # the environment TensorFlow was imported with


def main(argv: list[str]) -> int:
    """``--module M`` (the served tree's worker module) and, for a source tree that is not
    the installed one, ``--map ROOT`` (:mod:`distbench.scenarios.boot`)."""
    global WORKER, IMPORTED_WITH
    args = dict(zip(argv[::2], argv[1::2]))
    # Run as a script, Python put this folder first on sys.path, where its modules could
    # shadow others' top-level names: take it out.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
    if "--map" in args:
        _load_by_path("_distbench_boot", os.path.join(HERE, "boot.py")).map_tree(args["--map"])
    IMPORTED_WITH = dict(os.environ)
    _load_by_path("_distbench_keras_extras", os.path.join(HERE, os.pardir, "core", "keras_extras.py")).refuse()
    import tensorflow

    # The point: imported once, before any fork. tf.keras resolves to Keras 3, or to
    # tf-keras when the server's environment has TF_USE_LEGACY_KERAS=1 (its own server).
    tensorflow.keras.layers  # noqa: B018 - the attribute access loads the lazy module

    # The served tree's worker code too: every worker of a run then runs the code as it was
    # when the run started, not whatever the files hold when it forks (an edit during a run
    # would otherwise reach its later cells). A tree that cannot import is not served:
    # its workers start fresh and record the error.
    WORKER = importlib.import_module(args.get("--module", "distbench.worker"))
    if args.get("--module") == "bench.worker":
        importlib.import_module("bench.cell")   # before the one-namespace layout
    _send(sys.stdout, {"ready": os.getpid()})
    serve(sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    # Done serving: exit now, as its workers do. The interpreter's teardown with TensorFlow
    # loaded took about 1 s, which the parent waited for at the end of every command.
    os._exit(code)
