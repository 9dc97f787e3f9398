"""ParameterServerStrategy: TF_CONFIG roles, a local cluster of real processes (a
coordinator, workers, parameter servers), a killed parameter server, and a cluster whose
servers were started by `distbench serve`, as on real machines."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from distbench import strategies
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.launchers import cluster
from distbench.scenarios.server import task_of
from distbench.session.plan import skip_reason
from distbench.strategies import hardware
from distbench.strategies.parameter_server import cluster_roles
from distbench.trackers.timing import StepClock

from tests.processes import all_gone, gone

CLUSTER = {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"], "ps": ["h3:1"]}


def _config(kind, index, cluster=CLUSTER):
    return {"cluster": cluster, "task": {"type": kind, "index": index}}


def test_tf_config_roles_are_read_and_what_is_missing_is_named():
    assert cluster_roles(_config("ps", 0)) == {"chief": 1, "worker": 2, "ps": 1}
    with pytest.raises(ValueError, match="its cluster has no ps"):
        cluster_roles(_config("worker", 0, {"chief": ["a:1"], "worker": ["b:1"]}))
    with pytest.raises(ValueError, match="task ps 1 is not in its cluster"):
        cluster_roles(_config("ps", 1))
    with pytest.raises(ValueError, match="its task must be one of chief, worker, ps"):
        cluster_roles(_config("evaluator", 0))
    assert task_of({"TF_CONFIG": json.dumps(_config("worker", 1))}) == (CLUSTER, "worker", 1)
    with pytest.raises(UserError, match="only worker and ps tasks serve"):
        task_of({"TF_CONFIG": json.dumps(_config("chief", 0))})


def test_tf_config_that_is_not_json_is_refused_and_listed_and_an_empty_one_means_unset(monkeypatch, capsys,
                                                                                      tmp_path):
    """TF_CONFIG='not json' was a traceback from list and parameter_server, and a skip with
    exit 0 for multi_worker (a CI job passed, measuring nothing); TF_CONFIG= was unusable for
    multi_worker and unset for parameter_server."""
    from distbench.cli.main import main

    hw = hardware.detect()
    monkeypatch.setenv("TF_CONFIG", "not json")
    for name in ("multi_worker", "parameter_server"):
        with pytest.raises(UserError, match="TF_CONFIG is not valid JSON"):
            strategies.get(name).availability(hw)
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert listed.count("unavailable: TF_CONFIG is not valid JSON") == 2 and "Traceback" not in listed
    for strategy in ("multi_worker", "default"):
        code = main(["run", "--strategy", strategy, "--loop", "custom", "--workload", "reuters_cnn",
                     "--results", str(tmp_path / "results")])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("distbench: error: TF_CONFIG is not valid JSON") and err.count("\n") == 1
        assert not (tmp_path / "results").exists()   # refused before any worker, nothing saved
    # A task its cluster does not have: the cell had crashed in TensorFlow ("The task_id 5 exceeds
    # the maximum id of worker") or, for index -1, waited out the connect deadline.
    for config in ({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 5}},
                   _config("chief", -1)):
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
        code = main(["run", "--strategy", "multi_worker" if "ps" not in config["cluster"] else "parameter_server",
                     "--loop", "custom", "--workload", "reuters_cnn", "--results", str(tmp_path / "results")])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "which its cluster does not have: its " in err, err
        assert not (tmp_path / "results").exists()
    # A chief its cluster does not list (TensorFlow failed each cell after its start-up), an
    # evaluator (a local cell stored as the cluster's), a job written as one string (counted by
    # its characters: "14 workers") and ports as numbers (a traceback).
    workers = ["127.0.0.1:1", "127.0.0.1:2"]
    for config, said in (({"cluster": {"worker": workers}, "task": {"type": "chief", "index": 0}},
                          "TF_CONFIG's task is chief 0, which its cluster does not have: its jobs are worker; "),
                         ({"cluster": {"worker": workers, "evaluator": ["127.0.0.1:3"]},
                           "task": {"type": "evaluator", "index": 0}},
                          "TF_CONFIG's task is evaluator 0, which distbench does not run: its jobs are worker, "),
                         ({"cluster": {"worker": "127.0.0.1:2222"}, "task": {"type": "worker", "index": 0}},
                          'TF_CONFIG\'s cluster job \'worker\' is "127.0.0.1:2222"; each job is a list of "host:port"'),
                         ({"cluster": {"worker": [2222, 2223]}, "task": {"type": "worker", "index": 0}},
                          "TF_CONFIG's cluster job 'worker' is [2222, 2223]; each job is a list of "),
                         # No task or no cluster skipped every cross-process cell (exit 3), an index "0"
                         # was a task the cluster lacks, an address without a port failed the cell in
                         # TensorFlow, and port 99999 waited out the connect deadline (a user's trial).
                         ({"cluster": {"worker": workers}}, "TF_CONFIG has no 'task' object (this process's place in "),
                         ({"task": {"type": "worker", "index": 0}}, "TF_CONFIG has no 'cluster' object (its jobs); "),
                         ({"cluster": {"worker": workers}, "task": {"type": "worker", "index": "0"}},
                          "TF_CONFIG's task is {\"type\": \"worker\", \"index\": \"0\"}; give its type and an integer index"),
                         ({"cluster": {"worker": ["127.0.0.1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}},
                          "TF_CONFIG's worker 0 is at '127.0.0.1', which is not host:port with a port from 1 to 65535"),
                         ({"cluster": {"worker": ["127.0.0.1:99999", "127.0.0.1:2"]},
                           "task": {"type": "worker", "index": 0}}, "TF_CONFIG's worker 0 is at '127.0.0.1:99999', ")):
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
        for argv in (["run", "--strategy", "multi_worker", "--loop", "custom", "--workload", "reuters_cnn",
                      "--results", str(tmp_path / "results")], ["list"]):
            code = main(argv)
            captured = capsys.readouterr()
            if argv[0] == "run":
                assert code == 2 and captured.err.startswith("distbench: error: " + said), captured.err
                assert captured.err.count("\n") == 1 and not (tmp_path / "results").exists()
            else:   # list says why, and counts no characters
                listed = " ".join(captured.out.split())
                assert said.strip() in listed and "14 workers" not in listed, captured.out
    # Two tasks at one address: "CreateContext failed. Context id: ... already exists", naming neither.
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    code = main(["run", "--strategy", "multi_worker", "--loop", "custom", "--workload", "reuters_cnn",
                 "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert code == 2 and err == ("distbench: error: TF_CONFIG's cluster lists 127.0.0.1:1 twice (worker 0 and worker "
                                 "1); give each task an address of its own.\n"), err
    # A batch the cluster's tasks do not divide: refused here, not by each task once all had joined.
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in (1, 2, 3)]},
                                                "task": {"type": "worker", "index": 0}}))
    code = main(["run", "--strategy", "multi_worker", "--loop", "custom", "--workload", "reuters_cnn",
                 "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert code == 2 and "Global batch 32 is not divisible by the 3 tasks of TF_CONFIG's multi_worker cluster" in err
    assert err.count("\n") == 1 and not (tmp_path / "results").exists()
    for empty in ("", "{}", '{"cluster": {}, "task": {}}'):   # no cluster, as TensorFlow reads them
        monkeypatch.setenv("TF_CONFIG", empty)
        for name, processes in (("multi_worker", 2), ("parameter_server", 4)):
            adapter = strategies.get(name)
            assert adapter.availability(hw).ok and adapter.local_processes() == processes, empty
    monkeypatch.setenv("TF_CONFIG", json.dumps(_config("chief", 0)))   # a parameter-server cluster
    assert "describes a parameter-server cluster" in strategies.get("multi_worker").availability(hw).reason


def test_the_chief_runs_the_cells_and_a_server_task_is_told_to_serve(monkeypatch):
    hw = hardware.detect()
    adapter = strategies.get("parameter_server")
    monkeypatch.setenv("TF_CONFIG", json.dumps(_config("chief", 0)))
    assert adapter.availability(hw).ok and adapter.local_processes() == 1
    monkeypatch.setenv("TF_CONFIG", json.dumps(_config("ps", 0)))
    assert "this process is ps 0 of TF_CONFIG's cluster; run `distbench serve` here" in adapter.availability(hw).reason
    monkeypatch.setenv("DISTBENCH_CLUSTER_SOURCE", "slurm")   # TF_CONFIG set by distbench from the job step: said so
    assert "this process is ps 0 of the SLURM job step's cluster; run" in adapter.availability(hw).reason
    monkeypatch.delenv("DISTBENCH_CLUSTER_SOURCE")
    monkeypatch.delenv("TF_CONFIG")
    local = strategies.get("parameter_server", workers=3, ps=2)
    assert local.local_processes() == 6
    assert local.local_tasks() == [("ps", 0, False), ("ps", 1, False), ("worker", 0, False), ("worker", 1, False),
                                   ("worker", 2, False), ("chief", 0, True)]
    configs = cluster.tf_configs([1, 2, 3, 4, 5, 6], local.local_tasks())
    assert configs[0]["cluster"] == {"ps": ["127.0.0.1:1", "127.0.0.1:2"], "worker": ["127.0.0.1:3", "127.0.0.1:4",
                                     "127.0.0.1:5"], "chief": ["127.0.0.1:6"]}
    assert configs[-1]["task"] == {"type": "chief", "index": 0}


def test_which_loops_run_under_which_keras():
    hw = hardware.detect()
    for keras in ("keras3", "tf_keras"):
        assert skip_reason(CellSpec("reuters_cnn", "parameter_server", "custom", keras=keras), hw) is None
        assert "train_on_batch does not schedule steps on the workers" in skip_reason(
            CellSpec("reuters_cnn", "parameter_server", "train_on_batch", keras=keras), hw)
    assert "Keras 3 fit does not support ParameterServerStrategy" in skip_reason(
        CellSpec("reuters_cnn", "parameter_server", "fit"), hw)
    assert skip_reason(CellSpec("reuters_cnn", "parameter_server", "fit", keras="tf_keras"), hw) is None


@pytest.mark.slow
def test_too_few_scheduled_steps_say_they_are_timed_in_units(tiny):
    """20 steps with 1 warm-up step read as 18 steady ones; they are 2 units of 10, the cold
    start's and the warm-up's."""
    record = cluster.launch_cluster(tiny("reuters_cnn", "parameter_server", "custom", steps_per_epoch=20, epochs=1,
                                        eval_examples=64))
    assert record["status"] == "error"
    assert ("No steady-state steps left after the cold start and 1 warm-up steps (20 steps ran in units of 10 "
            "scheduled steps, each timed whole: the cold start is one unit and the warm-up rounds up to whole units)"
            in record["reason"]), record["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("loop,keras", [("custom", "keras3"), ("fit", "tf_keras")])
def test_a_local_cluster_trains_by_scheduled_steps_and_leaves_nothing(tiny, loop, keras):
    record = cluster.launch_cluster(tiny("reuters_cnn", "parameter_server", loop, keras=keras, steps_per_epoch=40,
                                        eval_examples=64))
    assert record["status"] == "ok", record.get("reason")
    assert record["strategy"]["class"].startswith("ParameterServerStrategy")
    assert (record["strategy"]["workers"], record["strategy"]["parameter_servers"]) == (2, 1)
    assert record["loop"]["settings"]["scheduled"] is True and record["steps"]["steps_per_sample"] == 10
    assert record["keras"]["flavour"] == keras and record["accuracy"]["test"]["examples"] == 64
    assert sorted((w["task"], w["status"]) for w in record["workers"]) == [
        ("chief", "ok"), ("ps", "served"), ("worker", "served"), ("worker", "served")]
    assert all(gone(w["pid"]) for w in record["workers"])


@pytest.mark.slow
def test_a_killed_parameter_server_ends_the_cell_in_seconds_named_with_nothing_left(tiny):
    pids, killed = [], []
    spec = tiny("reuters_cnn", "parameter_server", "custom", epochs=50, steps_per_epoch=1000, deadline_s=300)

    def kill_the_ps(started):
        pids[:] = started
        killer = threading.Thread(target=later, args=(started[0],), daemon=True)
        killer.start()

    def later(ps):
        time.sleep(12)   # the coordinator has connected and schedules steps
        try:
            os.kill(ps, signal.SIGKILL)   # the tasks start ps first
            killed.append(ps)
        except ProcessLookupError:   # the cluster had ended on its own (one CI run: a gRPC "Unable to parse
            pass                     # request" before the kill): no kill to find, and no thread's error left

    for _ in range(2):   # once more only when the kill was never made: the effect is then not injected
        began = time.monotonic()
        record = cluster.launch_cluster(spec, on_start=kill_the_ps)
        if killed:
            break
    assert killed, record["reason"]
    assert time.monotonic() - began < 40
    assert record["status"] == "error" and record["error_kind"] == "cluster"
    assert record["reason"].startswith(f"ps 0 (pid {pids[0]}) was killed by SIGKILL"), record["reason"]
    assert all(gone(pid) for pid in pids)


def _served_cluster():
    """A loopback parameter-server cluster (TF_CONFIG's ``cluster``), the environment of its
    tasks, and its ps 0, worker 0 and worker 1 each started by `distbench serve`."""
    ports = cluster.free_ports(4)
    spec = {"chief": [f"127.0.0.1:{ports[0]}"], "worker": [f"127.0.0.1:{p}" for p in ports[1:3]],
            "ps": [f"127.0.0.1:{ports[3]}"]}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    servers = [subprocess.Popen([sys.executable, "-m", "distbench", "serve"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True,
                                env={**env, "TF_CONFIG": json.dumps(_config(kind, i, spec))})
               for kind, i in (("ps", 0), ("worker", 0), ("worker", 1))]
    return spec, env, servers


@pytest.mark.slow
def test_servers_started_by_distbench_serve_run_the_chief_s_cells_and_losing_them_all_fails_one(tmp_path):
    """A real cluster's shape on loopback: each task its own `distbench` process with its own
    TF_CONFIG, the workers and the parameter server by `distbench serve`. They serve one
    chief's cell after another. Then both workers are killed once they train: no step ends
    again, and TensorFlow's coordinator waits (up to an hour) for one to come back, so the
    cell waited for its --deadline (400 s here, 15 minutes by default) and read as a
    timeout. It is now a cluster fault, said STALL_S after the first one was heard."""
    spec, env, servers = _served_cluster()
    workers = servers[1:]

    def chief(steps: str, results):
        return subprocess.run(
            [sys.executable, "-m", "distbench", "run", "--strategy", "parameter_server", "--loop", "custom",
             "--keras", "keras3", "--workload", "reuters_cnn", "--data", "synthetic", "--steps-per-epoch", steps,
             "--epochs", "1", "--guard-seeds", "0", "--no-peak", "--eval-examples", "64", "--deadline", "400",
             "--results", str(results)],
            env={**env, "TF_CONFIG": json.dumps(_config("chief", 0, spec))}, capture_output=True, text=True,
            timeout=500)

    def kill_both_once_they_train():
        idle = [_settled(w.pid) for w in workers]
        while any(w.poll() is None and _cpu_s(w.pid) - i < 1.0 for w, i in zip(workers, idle)):
            time.sleep(0.2)
        time.sleep(2)
        for w in workers:
            os.killpg(w.pid, signal.SIGKILL)

    try:
        result = chief("40", tmp_path / "served")
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert "reuters_cnn-parameter_server-custom: ok" in result.stdout
        assert all(s.poll() is None for s in servers)   # they serve until killed
        killer = threading.Thread(target=kill_both_once_they_train, daemon=True)
        killer.start()
        lost = chief("3000", tmp_path / "lost")
    finally:
        for s in servers:
            if s.poll() is None:
                os.killpg(s.pid, signal.SIGKILL)
            s.wait()
    (path,) = (tmp_path / "served").glob("*/*.json")
    record = json.loads(path.read_text())["benchmarks"][0]["extra_info"]["distbench"]["repeats"][0]
    assert record["strategy"]["workers"] == 2 and record["strategy"]["shared_hardware"] is True
    assert all(w.returncode == -signal.SIGKILL for w in workers)   # killed by the test
    assert lost.returncode == 1, lost.stdout[-2000:] + lost.stderr[-2000:]
    (path,) = (tmp_path / "lost").glob("*/*.json")
    (record,) = json.loads(path.read_text())["distbench"]["unmeasured"]["reuters_cnn-parameter_server-custom"]
    assert record["status"] == "error" and record["error_kind"] == "cluster", record.get("reason")
    # 10 s, or three of the slowest unit's seconds when that is longer (a busy machine: 12.09 s)
    assert re.match(r"the parameter-server cluster lost a worker or a step while the cell ran, and no step ended in "
                    r"the (10|[\d.]+) s after it was heard", record["reason"]), record["reason"]
    assert "/job:worker/replica:0/task:" in record["reason"]


def test_serve_on_a_port_in_use_says_so_in_one_line():
    """It was a 20-line traceback ending in "UnknownError: Could not start gRPC server"."""
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    spec = {"chief": ["127.0.0.1:1"], "worker": [f"127.0.0.1:{port}"], "ps": ["127.0.0.1:2"]}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    try:
        result = subprocess.run([sys.executable, "-m", "distbench", "serve"], capture_output=True, text=True,
                                timeout=120, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3",
                                                  "TF_CONFIG": json.dumps(_config("worker", 0, spec))})
    finally:
        taken.close()
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("distbench")]
    assert errors == [f"distbench: error: Cannot serve worker 0 at 127.0.0.1:{port}: Could not start gRPC server "
                      "(is the port in use? TF_CONFIG's address for this task must be free on this machine)."], \
        result.stderr[-2000:]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("source", ["slurm"])   # a TF_CONFIG's: the same lines, its source named (CI's time)
def test_a_cell_whose_task_cannot_listen_names_its_address(tmp_path, source):
    """Under a TF_CONFIG or a SLURM step, a taken port failed the cell with "UnknownError:
    Could not start gRPC server" alone: no task, no address, and under SLURM no word of the
    setting that chose the port (a user's trial)."""
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CONFIG") and not k.startswith("SLURM")}
    if source == "slurm":   # a step of two tasks on this node, rank 0: its port is the base's
        env.update(SLURM_STEP_NUM_TASKS="2", SLURM_STEP_NODELIST="localhost", SLURM_STEP_TASKS_PER_NODE="2",
                   SLURMD_NODENAME="localhost", SLURM_PROCID="0", SLURM_LOCALID="0", SLURM_JOB_ID="1", SLURM_STEP_ID="0",
                   DISTBENCH_SLURM_PORT_BASE=str(port))
        address = f"localhost:{port}"
    else:
        address = f"127.0.0.1:{port}"
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [address, f"127.0.0.1:{cluster.free_ports(1)[0]}"]},
                                       "task": {"type": "worker", "index": 0}})
    try:
        result = subprocess.run(
            [sys.executable, "-m", "distbench", "run", "--strategy", "multi_worker", "--loop", "custom", "--keras",
             "keras3", "--workload", "reuters_cnn", "--data", "synthetic", "--guard-seeds", "0", "--no-peak",
             "--connect-deadline", "60", "--results", str(tmp_path)], env=env, capture_output=True, text=True,
            timeout=300)
    finally:
        taken.close()
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    (path,) = tmp_path.glob("*/*.json")
    (record,) = json.loads(path.read_text())["distbench"]["unmeasured"]["reuters_cnn-multi_worker-custom"]
    assert "Could not start gRPC server" in record["reason"], record["reason"]
    said = ("the SLURM job step's ports start at DISTBENCH_SLURM_PORT_BASE, 8888 unless set: give a free one"
            if source == "slurm" else
            "TF_CONFIG gives it: free that port or give another")
    assert record["reason"].endswith(f"(worker 0 could not listen at {address}: is the port in use on this "
                                     f"machine? {said})"), record["reason"]


@pytest.mark.slow
def test_killing_distbench_takes_its_parameter_server_cluster_with_it(tmp_path):
    """SIGKILL leaves the parent no chance to clean up: every task dies with it (its
    parent-death signal, through the fork server that forked it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CONFIG")}
    parent = subprocess.Popen(
        [sys.executable, "-m", "distbench", "run", "--strategy", "parameter_server", "--loop", "custom", "--keras",
         "keras3", "--workload", "reuters_cnn", "--data", "synthetic", "--steps-per-epoch", "5000", "--epochs", "1",
         "--guard-seeds", "0", "--no-peak", "--no-save"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    tasks: list[int] = []
    while time.monotonic() < deadline and len(tasks) < 5:   # a fork server; the coordinator, 2 workers, the ps
        time.sleep(1)
        tasks = _descendants(parent.pid)
    assert len(tasks) >= 5, tasks
    time.sleep(5)   # training
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    assert all_gone(tasks), [pid for pid in tasks if not gone(pid)]   # seconds, not the cell's deadline


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (its fork server, and the cluster's tasks forked by it)."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_each_worker_reads_the_shared_stream_from_its_own_offset():
    """Every worker builds its dataset from one traced function under the cell's global seed:
    without a per-worker offset they would train the same batches in the same order."""
    import numpy as np
    import tensorflow as tf
    from distbench.loops.base import TrainConfig, TrainContext, train_dataset
    from distbench.workloads.data import TextData

    x = np.arange(4000, dtype=np.int32).reshape(1000, 4)
    data = TextData(x, np.zeros(1000, np.int32), x[:8], np.zeros(8, np.int32), "synthetic", 4000, 2)
    ctx = TrainContext(None, None, None, data, TrainConfig(1, 10, 32, 1, seed=0), None)
    firsts = []
    for _ in range(2):
        tf.random.set_seed(0)
        firsts.append(next(iter(train_dataset(ctx, per_worker=True)))[0].numpy())
        time.sleep(0.01)
    assert not np.array_equal(firsts[0], firsts[1])
    tf.random.set_seed(0)
    plain = [next(iter(train_dataset(ctx)))[0].numpy() for _ in range(2)]
    assert np.array_equal(plain[0], plain[1])   # the seeded single-reader stream is reproducible


def test_a_worker_that_is_not_the_chief_creates_no_results_folder(monkeypatch, tmp_path):
    """Under a multi-worker TF_CONFIG only the chief saves; the others made an empty results/."""
    from distbench.session.session import Session

    monkeypatch.setenv("TF_CONFIG", json.dumps(_config("worker", 1, {"worker": ["h0:1", "h1:1"]})))
    session = Session.from_options({"strategy": ["multi_worker"], "loop": ["custom"], "workload": ["reuters_cnn"],
                                    "results": str(tmp_path / "results")})
    session.check_writable()
    assert not session.saving and not (tmp_path / "results").exists()


def _cpu_s(pid: int) -> float:
    """The CPU seconds ``pid`` has used (user + system)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _settled(pid: int, quiet_s: float = 2.0, within_s: float = 120.0) -> float:
    """``pid``'s CPU seconds once it has used none for ``quiet_s`` (a server started and idle)."""
    deadline, before = time.monotonic() + within_s, -1.0
    while time.monotonic() < deadline:
        now = _cpu_s(pid)
        if now - before < 0.05:
            return now
        before = now
        time.sleep(quiet_s)
    raise AssertionError(f"pid {pid} never settled")


@pytest.mark.slow
def test_a_worker_lost_by_a_real_cluster_while_it_trains_fails_the_cell(tmp_path):
    """Servers started by `distbench serve`, as on real machines: the chief sees no task die.
    Worker 1 is killed once it is training; TensorFlow's coordinator puts its steps back for
    worker 0 and training ends normally, so the cell read as a measurement of two workers
    (status ok, exit 0). It is now failed, and says why, at the step after the fault was
    heard rather than after worker 0 ran all 600 steps. (With
    TF_PSS_ENABLE_COORDINATION_SERVICE=1 the coordinator says so only at INFO: the test
    below; the same run with it set read ok, 66.69 ms/step, before the listener heard INFO.)"""
    spec, env, servers = _served_cluster()
    victim = servers[2]
    idle = _settled(victim.pid)

    def kill_worker_1_once_it_trains():
        while victim.poll() is None and _cpu_s(victim.pid) - idle < 1.0:   # an idle server uses no CPU
            time.sleep(0.2)
        time.sleep(2)
        os.killpg(victim.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_worker_1_once_it_trains, daemon=True)
    killer.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "distbench", "run", "--strategy", "parameter_server", "--loop", "custom",
             "--keras", "keras3", "--workload", "reuters_cnn", "--data", "synthetic", "--steps-per-epoch", "600",
             "--epochs", "1", "--guard-seeds", "0", "--no-peak", "--eval-examples", "64", "--deadline", "400",
             "--results", str(tmp_path)],
            env={**env, "TF_CONFIG": json.dumps(_config("chief", 0, spec))}, capture_output=True, text=True,
            timeout=500)
    finally:
        for s in servers:
            if s.poll() is None:
                os.killpg(s.pid, signal.SIGKILL)
            s.wait()
    assert victim.returncode == -signal.SIGKILL   # killed by the test, not ended by the run
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "reuters_cnn-parameter_server-custom: error: the parameter-server cluster lost" in result.stdout, \
        result.stdout[-2000:]
    (path,) = tmp_path.glob("*/*.json")
    (record,) = json.loads(path.read_text())["distbench"]["unmeasured"]["reuters_cnn-parameter_server-custom"]
    assert record["status"] == "error" and record["error_kind"] == "cluster", record.get("reason")
    assert record["reason"].startswith("the parameter-server cluster lost a worker or a step while the cell ran")
    assert "/job:worker/replica:0/task:1" in record["reason"]
    stopped = re.search(r"\(the cell stopped after step (\d+), when it was heard\)$", record["reason"])
    assert stopped and int(stopped.group(1)) < 600, record["reason"]


def test_a_fault_the_coordinator_says_at_info_is_heard_whatever_its_logger_shows():
    """Under TensorFlow's coordination service a lost worker is said only at INFO (``[Worker
    1] Putting back a closure after it failed.``), below what TensorFlow's logger shows,
    and a user may have raised it further. The listener hears it through TensorFlow's own
    logging call, also under a process-wide `logging.disable`; TensorFlow's handlers still show
    nothing they did not before."""
    import logging

    from distbench.trackers import cluster_faults
    from tensorflow.python.platform import tf_logging

    logger = tf_logging.get_logger()
    shown: list[str] = []
    seen = logging.Handler()
    seen.emit = lambda record: shown.append(record.getMessage())
    before = logger.level
    logger.setLevel(logging.CRITICAL)
    logger.addHandler(seen)
    try:
        for disabled in (logging.NOTSET, logging.WARNING):   # and a process-wide logging.disable(WARNING)
            logging.disable(disabled)
            faults = cluster_faults.listen()
            tf_logging.info("[Worker %d] Putting back a closure after it failed.", 1)
            tf_logging.info("Waiting for all global closures to be finished.")   # not a fault
            with pytest.raises(cluster_faults.ClusterFault,
                               match=r": \[Worker 1\] Putting back a closure after it failed\.$"):
                faults.check()
            assert logger.level == logging.CRITICAL and not logger.filters
            # At a step's end (the training cell's StepClock.checks): at the step after the fault.
            clock = StepClock()
            faults = cluster_faults.listen()
            clock.checks.append(lambda: faults.check_heard(clock))
            clock.start()
            clock.stop(steps=2)                                      # nothing heard: goes on
            tf_logging.info("[Worker %d] Putting back a closure after it failed.", 1)
            clock.start()
            with pytest.raises(cluster_faults.ClusterFault, match=r"\(the cell stopped after step 3, when it was heard\)$"):
                clock.stop()
            assert clock.steps == [2, 1]
            assert logger.level == logging.CRITICAL and not logger.filters
            assert logging.root.manager.disable == disabled
    finally:
        logging.disable(logging.NOTSET)
        logger.removeHandler(seen)
        logger.setLevel(before)
    assert shown == []


@pytest.mark.slow
def test_a_cluster_task_that_never_starts_fails_the_cell_at_the_connect_deadline(tmp_path):
    """A real cluster's TF_CONFIG whose workers and parameter server were never started (a
    forgotten `distbench serve`): creating the strategy waits inside TensorFlow for them, and
    the cell waited its whole deadline (--deadline, 15 minutes by default) before it failed,
    saying only that it timed out. It now fails at the connect deadline, naming what it
    waited for."""
    strategy = "parameter_server"
    addresses = [f"127.0.0.1:{p}" for p in cluster.free_ports(4)]
    spec = {"chief": [addresses[0]], "worker": addresses[1:3], "ps": [addresses[3]]}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "distbench", "run", "--strategy", strategy, "--loop", "custom", "--keras", "tf_keras",
         "--workload", "reuters_cnn", "--data", "synthetic", "--steps-per-epoch", "20", "--epochs", "1",
         "--guard-seeds", "0", "--no-peak", "--connect-deadline", "5", "--deadline", "400",
         "--results", str(tmp_path)],
        env={**env, "TF_CONFIG": json.dumps(_config("chief", 0, spec))}, capture_output=True, text=True, timeout=500)
    assert time.monotonic() - began < 200   # not the cell's 400 s
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    (path,) = tmp_path.glob("*/*.json")
    (record,) = json.loads(path.read_text())["distbench"]["unmeasured"][f"reuters_cnn-{strategy}-custom-tf_keras"]
    assert record["status"] == "error" and record["error_kind"] == "timeout", record["reason"]
    assert record["reason"] == (
        f"parameter_server: connecting to the cluster's workers and parameter servers ({', '.join(addresses[1:])}) "
        "did not finish within 5 s (--connect-deadline); a task that is not serving (start `distbench serve` on "
        "each), has stopped, or cannot be reached from here keeps the coordinator waiting; nothing accepts a "
        f"connection at worker 0 ({addresses[1]}: Connection refused), worker 1 ({addresses[2]}: Connection refused), "
        f"ps 0 ({addresses[3]}: Connection refused)")


@pytest.mark.slow
def test_a_local_cluster_s_connect_deadline_does_not_ask_for_distbench_serve(tmp_path):
    """distbench started the local tasks itself: "start `distbench serve` on each" was advice
    for a cluster of the user's."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CONFIG")}
    result = subprocess.run(
        [sys.executable, "-m", "distbench", "run", "--strategy", "parameter_server", "--loop", "custom", "--keras",
         "tf_keras", "--workload", "reuters_cnn", "--data", "synthetic", "--steps-per-epoch", "20", "--epochs", "1",
         "--guard-seeds", "0", "--no-peak", "--connect-deadline", "0.01", "--results", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=500)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    (path,) = tmp_path.glob("*/*.json")
    (record,) = json.loads(path.read_text())["distbench"]["unmeasured"]["reuters_cnn-parameter_server-custom-tf_keras"]
    assert "one of the tasks distbench started here that has not started serving yet" in record["reason"], record
    assert "distbench serve" not in record["reason"], record["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("connect, deadline, within", [("5", "400", "5 s (--connect-deadline)"),
                                                       ("400", "5", "the cell's 5 s (--deadline)")])
def test_a_multi_worker_peer_that_never_starts_fails_the_cell_at_the_connect_deadline(tmp_path, connect, deadline,
                                                                                       within):
    """Worker 0 of a two-worker TF_CONFIG whose worker 1 never starts: creating the strategy
    waits for it inside TensorFlow, holding Python's lock (no deadline inside the worker
    can run), and the cell waited its whole --deadline (400 s here) before it failed. Its
    launcher now kills it at the connect deadline, naming the cluster; or at the cell's own
    deadline when that comes first (it had waited the connect deadline past it)."""
    addresses = [f"127.0.0.1:{p}" for p in cluster.free_ports(2)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "distbench", "run", "--strategy", "multi_worker", "--loop", "custom", "--keras",
         "tf_keras", "--workload", "reuters_cnn", "--data", "synthetic", "--steps-per-epoch", "20", "--epochs", "1",
         "--guard-seeds", "0", "--no-peak", "--connect-deadline", connect, "--deadline", deadline, "--results",
         str(tmp_path)],
        env={**env, "TF_CONFIG": json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": 0}})},
        capture_output=True, text=True, timeout=500)
    assert time.monotonic() - began < 200   # not the 400 s
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    (path,) = tmp_path.glob("*/*.json")
    (record,) = json.loads(path.read_text())["distbench"]["unmeasured"]["reuters_cnn-multi_worker-custom-tf_keras"]
    assert record["status"] == "error" and record["error_kind"] == "timeout", record["reason"]
    assert record["reason"].startswith(
        f"multi_worker: joining the cluster ({', '.join(addresses)}) did not finish within {within}; "
        "a worker that has not started (each runs the same `distbench run`), has stopped, or cannot be reached from "
        f"here keeps the others waiting; nothing accepts a connection at worker 1 ({addresses[1]}: Connection "
        "refused); worker pid "), record["reason"]


@pytest.mark.slow
def test_a_revision_s_worker_is_killed_at_the_connect_deadline_too(tmp_path, monkeypatch, tiny):
    """``check --against`` launches a user's revision with the installed distbench in the
    revision's worktree (a CodeTree without a source root): the launcher had turned its
    connect deadline off for every tree, so a peer that never starts held the cell to its
    whole --deadline ("timed out after 90 s")."""
    from distbench.launchers import process as launcher
    from distbench.launchers.trees import CodeTree

    addresses = [f"127.0.0.1:{p}" for p in cluster.free_ports(2)]
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": 0}}))
    spec = tiny("reuters_cnn", "multi_worker", "custom", keras="tf_keras", connect_deadline_s=5, deadline_s=90)
    record = launcher.launch(spec, tree=CodeTree(None, str(tmp_path)))
    assert record["status"] == "error" and record["error_kind"] == "timeout", record["reason"]
    assert record["reason"].startswith(f"multi_worker: joining the cluster ({', '.join(addresses)}) did not finish "
                                       "within 5 s (--connect-deadline)"), record["reason"]


def test_a_tf_config_cluster_s_size_is_the_cells_and_a_flag_that_disagrees_is_refused(monkeypatch, tmp_path):
    """Under TF_CONFIG the cells recorded --workers 3 --ps 2 while a cluster of 2 and 1 ran
    (and stored runs of 1 and 2 workers were compared as one measurement)."""
    from distbench.core.errors import UserError
    from distbench.session.session import Session

    def cells(cluster, **typed):
        monkeypatch.setenv("TF_CONFIG", json.dumps(_config("chief", 0, cluster)))
        return Session.from_options({"strategy": ["parameter_server", "multi_worker"], "loop": ["custom"],
                                     "workload": ["reuters_cnn"], "results": str(tmp_path), **typed}).values

    monkeypatch.setenv("TF_CONFIG", json.dumps(_config("chief", 0, {"chief": ["h:10"], "worker": ["h:11", "h:12", "h:13"],
                                                                    "ps": ["h:14"]})))
    whole = Session.from_options({"loop": ["custom"], "workload": ["reuters_cnn"], "results": str(tmp_path)}).values
    assert whole["workers"] == 3   # no strategy named: the whole matrix, its cluster cells too

    served = {"chief": ["h:10"], "worker": ["h:11", "h:12", "h:13"], "ps": ["h:14"]}
    assert (cells(served)["workers"], cells(served)["ps"]) == (3, 1)
    assert cells({"chief": ["h:10"], "worker": ["h:11"]})["workers"] == 2   # multi_worker's chief is a worker too
    assert cells(served, workers=3)["workers"] == 3
    with pytest.raises(UserError, match=r"^--workers 2: this process is a task of TF_CONFIG's cluster, which has 3 "
                                        r"workers; the cluster decides: leave --workers out \(or give 3\)\.$"):
        cells(served, workers=2)
    with pytest.raises(UserError, match="^--ps 2: .* which has 1 parameter server;"):
        cells(served, ps=2)


def test_a_worker_s_tf_config_left_in_the_shell_refuses_cells_no_chief_would_save(monkeypatch, tmp_path):
    """``TF_CONFIG`` of worker 1, left set, and a ``default`` cell: it was measured, "Not
    saved", exit 0, and no chief ever saves it."""
    from distbench.core.errors import UserError
    from distbench.session.session import Session

    monkeypatch.setenv("TF_CONFIG", json.dumps(_config("worker", 1, {"worker": ["h0:1", "h1:1"]})))

    def session(strategies, **more):
        return Session.from_options({"strategy": strategies, "loop": ["custom"], "workload": ["reuters_cnn"],
                                     "results": str(tmp_path / "results"), **more})

    with pytest.raises(UserError, match=r"^TF_CONFIG makes this process worker 1 of a cluster, which leaves saving to "
                                        r"its chief, but no selected cell is a cluster's \(default\): nothing measured "
                                        r"here would be saved\."):
        session(["default"]).check_writable()
    session(["default"], no_save=True).check_writable()          # asked for: measured, not saved
    session(["default", "multi_worker"]).check_writable()        # a cluster's worker: its chief saves


@pytest.mark.slow
@pytest.mark.parametrize("other_worker, said", [
    (("--global-batch", "32"), "the cluster's workers were given other settings (global_batch; this worker's: "
                               "global_batch 8)"),
    (("--data", "texts"), "the cluster's workers read other examples (this worker's: synthetic, fingerprint ")])
def test_multi_worker_workers_given_another_batch_fail_the_cell_naming_it(tmp_path, other_worker, said):
    """Two workers of a TF_CONFIG cluster, each its own `distbench run`, worker 1 given
    --global-batch 32 and the chief 8: each replica took its own worker's share, and the
    chief saved 254 ex/s for steps of 20 examples as the cluster's, exit 0. Given another
    --data: the gradients averaged two datasets, stored as the chief's data alone, exit 0."""
    addresses = [f"127.0.0.1:{p}" for p in cluster.free_ports(2)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for label, words in (("news", "market shares rose"), ("sport", "the match ended")):   # a folder of two classes
        (tmp_path / "texts" / label).mkdir(parents=True)
        for k in range(40):
            (tmp_path / "texts" / label / f"{k}.txt").write_text(f"{words} {k} " * 20)

    def worker(index: int, *own: str) -> subprocess.Popen:
        given = {flag: str(tmp_path / value) if flag == "--data" else value for flag, value in zip(own[::2], own[1::2])}
        return subprocess.Popen(
            [sys.executable, "-m", "distbench", "run", "--strategy", "multi_worker", "--loop", "custom", "--keras",
             "keras3", "--workload", "reuters_cnn", "--data", given.get("--data", "synthetic"), "--steps-per-epoch",
             "20", "--epochs", "1", "--guard-seeds", "0", "--no-peak", "--global-batch", given.get("--global-batch", "8"),
             "--connect-deadline", "60", "--deadline", "300", "--results", str(tmp_path / f"w{index}")],
            env={**env, "TF_CONFIG": json.dumps({"cluster": {"worker": addresses},
                                                 "task": {"type": "worker", "index": index}})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    chief, other = worker(0), worker(1, *other_worker)
    out, err = chief.communicate(timeout=400)
    other.communicate(timeout=120)
    assert chief.returncode == 1 and other.returncode == 1, out[-2000:] + err[-2000:]
    (path,) = (tmp_path / "w0").glob("*/*.json")
    (record,) = json.loads(path.read_text())["distbench"]["unmeasured"]["reuters_cnn-multi_worker-custom"]
    assert record["status"] == "error" and record["reason"].startswith(said), record
