"""Cells in fresh worker processes: records come back, deadlines kill, crashes are reported."""

import json
import os
import signal
import sys
import time

import pytest
from distbench.core.errors import UserError
from distbench.launchers import forkserver
from distbench.launchers import process as launcher
from distbench.launchers.trees import CodeTree

from tests.processes import gone

pytestmark = pytest.mark.slow


def test_a_cell_runs_in_its_own_process_with_its_own_device_setup(tiny):
    # virtual with 3 devices cannot run in this test process (it has 2 logical CPUs).
    record = launcher.launch(tiny("reuters_cnn", "virtual", "custom", devices=3, global_batch=33))
    assert record["status"] == "ok", record.get("reason")
    assert record["strategy"]["replicas"] == 3
    assert record["worker_pid"] != os.getpid()


def test_user_errors_in_the_worker_come_back_as_one_line(tiny):
    record = launcher.launch(tiny("reuters_cnn", "virtual", "fit", devices=2, data="/no/such/folder"))
    assert record["status"] == "error" and record["error_kind"] == "user_error"
    assert "Cannot read data folder '/no/such/folder'" in record["reason"]


def test_a_worker_past_its_deadline_is_killed_with_its_group(tiny):
    spec = tiny("multibranch", "default", "fit", epochs=50, steps_per_epoch=1000, deadline_s=4.0)
    started = time.monotonic()
    record = launcher.launch(spec)
    assert time.monotonic() - started < 15
    assert record["status"] == "error" and record["error_kind"] == "timeout"
    assert record["reason"].startswith("timed out after 4 s")
    pid = int(record["reason"].split("worker pid ")[1].split()[0])
    assert gone(pid)


def test_a_parent_without_tensorflow_takes_the_devices_a_worker_lists(monkeypatch):
    """What the ``machine`` task's worker lists is what this process would list itself; a
    worker that fails leaves the listing to this process. (That a run's parent imports no
    TensorFlow: tests/test_user_project.py.)"""
    from distbench.strategies import hardware

    listed = hardware._list_devices()   # this process's own listing, not the session's CPU-only view
    monkeypatch.setattr(hardware, "_found", {})
    monkeypatch.setattr(hardware, "known", lambda: False)
    assert launcher.machine() == listed
    assert len(hardware.tensorflow_facts()["gpus"]) == len(listed.gpus)   # adopted: TensorFlow's build, from the worker
    monkeypatch.setattr(hardware, "_found", {})
    crashed = {"status": "error", "error_kind": "crash", "reason": "worker pid 1 was killed by SIGKILL"}
    monkeypatch.setattr(launcher, "launch", lambda spec, env, task: crashed)
    monkeypatch.setattr(hardware, "detect", lambda: "listed here")
    assert launcher.machine() == "listed here"


def test_a_relative_pythonpath_means_the_worker_s_folder():
    """A fork server resolves PYTHONPATH where it starts; a worktree's worker must get its own."""
    env = CodeTree(workdir="/side/a").environ({"PYTHONPATH": "src" + os.pathsep + "/abs"})
    assert env["PYTHONPATH"].split(os.pathsep)[:2] == ["/side/a/src", "/abs"]


def test_a_worker_that_dies_is_reported_with_its_signal(tiny, tmp_path):
    # sitecustomize runs at interpreter start: the worker dies before writing a record.
    (tmp_path / "sitecustomize.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    record = launcher.launch(tiny(), env={"PYTHONPATH": str(tmp_path)})
    assert record["status"] == "error" and record["error_kind"] == "crash"
    assert "was killed by SIGKILL without writing a record" in record["reason"]


def test_a_fork_server_serves_only_the_environment_it_started_with(tmp_path, monkeypatch):
    """One server per start-up environment; a request for another environment is refused by
    the server's child (exit 3, naming the variable) instead of running with the server's."""
    monkeypatch.setenv("DISTBENCH_SPAWN", "fork")
    plain_env = CodeTree().environ(dict(forkserver.WORKER_ENV))
    off_env = CodeTree().environ({**forkserver.WORKER_ENV, "TF_ENABLE_ONEDNN_OPTS": "0"})
    plain = forkserver.server_for(CodeTree(), plain_env)
    off = forkserver.server_for(CodeTree(), off_env)
    assert plain is not None and off is not None and plain is not off
    assert forkserver.server_for(CodeTree(), dict(plain_env)) is plain
    log = tmp_path / "worker.log"
    proc = plain.spawn(["no-spec.json", "no-record.json"], {}, off_env, str(log), str(tmp_path))
    assert proc.wait(timeout=60) == 3
    assert "imported without TF_ENABLE_ONEDNN_OPTS as asked" in log.read_text()


def test_a_worker_environment_s_own_distbench_spawn_is_honoured(monkeypatch):
    """An ab side's ``DISTBENCH_SPAWN=exec`` was recorded in its workers' environment and not
    honoured: they came from the fork server, an A/A run of the question "does the fork
    server change my timings?"."""
    monkeypatch.setenv("DISTBENCH_SPAWN", "fork")
    env = CodeTree().environ({**forkserver.WORKER_ENV, "DISTBENCH_SPAWN": "exec"})
    assert forkserver.server_for(CodeTree(), env) is None   # the caller starts a fresh interpreter
    monkeypatch.setenv("DISTBENCH_SPAWN", "exec")
    with pytest.raises(UserError, match="Unknown DISTBENCH_SPAWN 'fast'"):
        forkserver.server_for(CodeTree(), {**env, "DISTBENCH_SPAWN": "fast"})


class _Hanging(CodeTree):
    """A tree whose fork server never says it is ready (an import that hangs)."""

    def server_command(self):
        return [sys.executable, "-c", "import time; time.sleep(120)"]


def test_a_fork_server_that_never_starts_falls_back_to_fresh_interpreters(monkeypatch):
    """Its start had no deadline: a run whose server's import hung (a stalled file system)
    hung with no output, holding the lock its lockstep partner needed."""
    monkeypatch.setenv("DISTBENCH_SPAWN", "fork")
    monkeypatch.setattr(forkserver, "SERVER_START_S", 1.0)
    tree = _Hanging(workdir="/tmp")
    started = time.monotonic()
    assert forkserver.server_for(tree, {"X": "1"}) is None   # the caller starts a fresh interpreter
    assert time.monotonic() - started < 30 and (tree, (("X", "1"),)) in forkserver._failed


def test_ctrl_c_while_a_fork_server_starts_stops_it(monkeypatch):
    """Ctrl-C while the server imported TensorFlow: distbench exited (130), and the server, in
    a session of its own, went on importing, orphaned, at a core's full use, for 4-8 s."""
    import signal

    started = []
    popen = forkserver.subprocess.Popen
    monkeypatch.setattr(forkserver.subprocess, "Popen", lambda *a, **kw: started.append(popen(*a, **kw)) or started[-1])

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            forkserver.ForkServer(_Hanging(workdir="/tmp"), {"X": "1"})
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    (server,) = started
    assert server.poll() is not None   # killed and reaped, not left sleeping for its 120 s


def test_ctrl_c_stops_a_fork_server_a_lockstep_thread_waits_for(monkeypatch):
    """A lockstep pair's side starts its fork server in a thread, which Ctrl-C in the main
    thread does not reach: the main thread's join waited out the server's TensorFlow import
    (its deadline: 300 s). kill_all, which Ctrl-C calls, ends the start."""
    import threading

    from distbench.launchers import process

    monkeypatch.setattr(forkserver, "SERVER_START_S", 120.0)
    found = []

    def start():
        try:
            forkserver.ForkServer(_Hanging(workdir="/tmp"), {"X": "1"})
        except OSError as exc:
            found.append(exc)

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    began = time.monotonic()
    while not forkserver._starting and time.monotonic() - began < 10:
        time.sleep(0.05)
    (server,) = forkserver._starting
    try:
        process.kill_all()
        thread.join(timeout=20)
    finally:
        process.resume()
    assert not thread.is_alive() and time.monotonic() - began < 20 and found, found
    assert server.poll() is not None and not forkserver._starting


def test_a_worker_of_a_fork_server_that_dies_is_seen_to_end_at_once(tiny, tmp_path, monkeypatch):
    """The server killed (as by the out-of-memory killer) while its worker trains: the
    worker dies with it, and waiting for it ends then, not at the cell's deadline. (The
    server is now reaped before its waiters wake; before, they could wake while it still
    looked alive, and wait on.)"""
    import json
    import signal

    monkeypatch.setenv("DISTBENCH_SPAWN", "fork")
    env = CodeTree().environ({**forkserver.WORKER_ENV, "DISTBENCH_TEST_SERVER": str(tmp_path)})   # a server of its own
    server = forkserver.server_for(CodeTree(), env)
    assert server is not None
    (tmp_path / "spec.json").write_text(json.dumps(tiny("reuters_cnn", "default", "custom",
                                                        steps_per_epoch=5000).to_dict()))
    proc = server.spawn([str(tmp_path / "spec.json"), str(tmp_path / "record.json"), "cell"], {}, env,
                        str(tmp_path / "worker.log"), str(tmp_path))
    time.sleep(1.0)
    os.kill(server.pid, signal.SIGKILL)
    started = time.monotonic()
    assert proc.wait(timeout=60) == -signal.SIGKILL and time.monotonic() - started < 15
    deadline = time.monotonic() + 10
    while not gone(proc.pid) and time.monotonic() < deadline:   # it died with the server, not only said to
        time.sleep(0.1)
    assert gone(proc.pid) and not (tmp_path / "record.json").exists()
    assert proc.server_gone()   # the crash record says so: the worker's "killed by SIGKILL" was the server's
    forkserver.discard(server)


NOTING = '''"""A model that notes, as its cell builds it, what its worker process had imported."""
import json
import sys
from pathlib import Path

from distbench import TextClassifier


class Noting(TextClassifier):
    name = "noting"
    vocab_size = 200
    num_classes = 2
    sequence_length = 16

    def build_model(self, vocab_size: int):
        import keras

        noted = Path(__file__).with_name("noted.json")
        if not noted.exists():   # the first model this process builds
            loaded = sorted(m for m in ("sklearn", "matplotlib") if m in sys.modules)
            import sklearn.datasets   # the workload's own import: as ever

            used = sklearn.datasets.load_digits().data.shape
            noted.write_text(json.dumps({"loaded": loaded, "used": used}))
        return keras.Sequential([keras.Input(shape=(self.sequence_length,), dtype="int32"),
                                 keras.layers.Embedding(vocab_size, 4), keras.layers.Flatten(),
                                 keras.layers.Dense(1, activation="sigmoid")], name=self.name)
'''


@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_a_worker_leaves_scikit_learn_and_matplotlib_out_of_keras_s_own_imports(tiny, tmp_path, monkeypatch, spawn):
    """Keras 3 imports scikit-learn and matplotlib.pyplot with itself when they are installed
    (about a third of a worker's start here); a cell's worker, forked or fresh, has neither
    when its model is built, and the workload's own import of scikit-learn works."""
    monkeypatch.setenv("DISTBENCH_SPAWN", spawn)
    (tmp_path / "noting.py").write_text(NOTING)
    spec = tiny("noting", "default", "custom", plugins=[f"workload={tmp_path / 'noting.py'}:Noting"])
    record = launcher.launch(spec)
    assert record["status"] == "ok", record.get("reason")
    noted = json.loads((tmp_path / "noted.json").read_text())
    assert noted == {"loaded": [], "used": [1797, 64]}, noted
    assert record["started"]["mode"] == spawn


def test_a_worker_that_never_opened_its_log_is_an_error_record_not_a_traceback(tmp_path):
    assert launcher.output_tail(str(tmp_path / "never-written.log")) == ""
    assert launcher.with_fatal_line("worker pid 9 was killed by SIGKILL", str(tmp_path / "none.log")) == (
        "worker pid 9 was killed by SIGKILL")


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEGACY = "8f12c8322c6430ed6921fe96d9f5f98e4b9a0147"   # the last commit before the one-namespace layout


def _tree_copy(tmp_path):
    """A source tree of this layout that is not the installed one, whose worker tells where
    its code lives: its scenario table gets a task that answers with its own file."""
    import shutil

    root = tmp_path / "tree"
    for name in ("bench", "strategies", "workloads", "pyproject.toml"):
        (shutil.copytree if name != "pyproject.toml" else shutil.copy)(os.path.join(ROOT, name), root / name)
    tasks = root / "bench" / "scenarios" / "tasks.py"
    tasks.write_text(tasks.read_text() + '\nSCENARIOS["where"] = Scenario(lambda spec: {"cell": spec.id, '
                     '"status": "ok", "tasks_file": __file__})\nTASKS = (*TASKS, "where")\n')
    return root


@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_a_worker_runs_the_code_of_the_tree_it_is_given(tiny, tmp_path, monkeypatch, spawn):
    """check --against runs side A from another source tree: its workers import that tree's
    distbench (scenarios/boot.py maps its folders), not the installed one."""
    monkeypatch.setenv("DISTBENCH_SPAWN", spawn)
    root = _tree_copy(tmp_path)
    record = launcher.launch(tiny("reuters_cnn", "default", "custom"), task="where", tree=CodeTree(str(root)))
    assert record["status"] == "ok", record.get("reason")
    assert record["tasks_file"] == str(root / "bench" / "scenarios" / "tasks.py")
    # the installed tree has no such task: its worker says so
    record = launcher.launch(tiny("reuters_cnn", "default", "custom"), task="where")
    assert record["status"] == "error" and "Unknown worker task 'where'" in record["reason"]
    launcher.forkserver.release(str(root))


def test_a_revision_s_fork_server_is_stopped_with_its_worktree(tiny, tmp_path, monkeypatch):
    """A user's revision runs with the installed distbench in its worktree, ``PYTHONPATH=src``
    made the worktree's: its fork server (TensorFlow imported) outlived the worktree, one
    more per revision a bisect visited."""
    monkeypatch.setenv("DISTBENCH_SPAWN", "fork")
    worktree = tmp_path / "rev"
    (worktree / "src").mkdir(parents=True)
    record = launcher.launch(tiny("reuters_cnn", "default", "custom"), env={"PYTHONPATH": "src"}, task="machine",
                             tree=CodeTree(None, str(worktree)))
    assert record["status"] == "ok", record.get("reason")
    servers = launcher.forkserver._servers
    (server,) = [s for key, s in servers.items() if str(worktree / "src") in dict(key[1]).get("PYTHONPATH", "")]
    assert server.alive()
    launcher.forkserver.release(str(worktree))
    assert server not in servers.values() and not server.alive()


@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_a_tree_from_before_the_namespace_runs_its_own_bench_worker(tiny, tmp_path, monkeypatch, spawn):
    """A revision from before the one-namespace layout runs as `python -m bench.worker` from its tree."""
    import subprocess

    known = subprocess.run(["git", "cat-file", "-e", f"{LEGACY}^{{commit}}"], cwd=ROOT, capture_output=True)
    if known.returncode != 0:
        pytest.skip(f"this clone does not have {LEGACY[:8]} (a shallow clone)")
    monkeypatch.setenv("DISTBENCH_SPAWN", spawn)
    root = tmp_path / "legacy"
    subprocess.run(["git", "worktree", "add", "--detach", str(root), LEGACY], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        record = launcher.launch(tiny("reuters_cnn", "default", "custom"), task="where", tree=CodeTree(str(root)))
        assert record["status"] == "error" and "Unknown worker task 'where'" in record["reason"]
        assert str(root / "bench" / "worker.py") in record["traceback"]     # the old tree's worker raised it
    finally:
        launcher.forkserver.release(str(root))
        subprocess.run(["git", "worktree", "remove", "--force", str(root)], cwd=ROOT, capture_output=True)


def test_ctrl_c_while_a_worker_s_join_is_awaited_kills_the_worker(tmp_path):
    """A TF_CONFIG ``multi_worker`` worker whose peer never starts is waited for until it
    marks its join (``_unjoined``); Ctrl-C in that wait kills it now, as the ordinary wait
    does, rather than leaving it waiting for its peer in its own session."""
    import _thread
    import subprocess
    import threading

    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    # Python's own SIGINT handler, as in a terminal: a suite started in the background by a
    # shell inherits SIGINT ignored, and interrupt_main then does nothing.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(1.0, _thread.interrupt_main).start()   # Ctrl-C, as the terminal's SIGINT raises it
        with pytest.raises(KeyboardInterrupt):
            launcher._unjoined(worker, str(tmp_path / "never-marked"), deadline_s=60)
        assert worker.poll() is not None, "the worker outlived Ctrl-C"
    finally:
        signal.signal(signal.SIGINT, before)
        if worker.poll() is None:
            worker.kill()
            worker.wait()
