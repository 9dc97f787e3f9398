"""A SLURM job step as the cluster: TF_CONFIG from SlurmClusterResolver, and a two-task
step faked on loopback (each task its own `distbench run`, the step's variables set per
process) that trains multi_worker."""

import json
import os
import subprocess
import sys

import pytest
from distbench.core.errors import UserError
from distbench.launchers import cluster
from distbench.strategies import slurm

from tests.processes import gone


def _step(rank: int, tasks: int, port: int) -> dict:
    return {"SLURM_PROCID": str(rank), "SLURM_STEP_NUM_TASKS": str(tasks), "SLURM_STEP_NODELIST": "127.0.0.1",
            "SLURM_STEP_TASKS_PER_NODE": str(tasks), "DISTBENCH_SLURM_PORT_BASE": str(port)}


def test_the_step_s_tasks_become_the_strategy_s_roles(monkeypatch):
    assert slurm.jobs("multi_worker", 4, 1) == {"worker": 4}
    assert slurm.jobs("parameter_server", 4, 1) == {"chief": 1, "ps": 1, "worker": 2}
    with pytest.raises(UserError, match="has no worker left for parameter_server after the chief and 2 parameter"):
        slurm.jobs("parameter_server", 3, 2)
    for name, value in _step(2, 4, 9000).items():   # the resolver reads this process's environment
        monkeypatch.setenv(name, value)
    for name in ("TF_CONFIG", "CUDA_VISIBLE_DEVICES", slurm.SOURCE_ENV):
        monkeypatch.setenv(name, "")   # recorded, so that what apply sets is undone after the test
        monkeypatch.delenv(name)
    environ = os.environ
    config = slurm.apply(["parameter_server"], 1, 0, environ)
    assert config == {"cluster": {"chief": ["127.0.0.1:9000"], "ps": ["127.0.0.1:9001"],
                                  "worker": ["127.0.0.1:9002", "127.0.0.1:9003"]},
                      "task": {"type": "worker", "index": 0}}
    assert json.loads(environ["TF_CONFIG"]) == config and environ[slurm.SOURCE_ENV] == "slurm"
    assert "CUDA_VISIBLE_DEVICES" not in environ      # a CPU node: no GPU assignment


def test_outside_a_step_or_with_tf_config_nothing_changes_and_two_strategies_are_refused():
    assert slurm.apply(["multi_worker"], 1, 0, {}) is None
    assert slurm.apply(["multi_worker"], 1, 0, {**_step(0, 2, 9000), "TF_CONFIG": "{}"}) is None
    assert slurm.apply(["default"], 1, 0, {**_step(0, 2, 9000), "TF_CONFIG": "{}"}) is None
    with pytest.raises(UserError, match="A SLURM job step is the cluster of one strategy"):
        slurm.apply([], 1, 0, _step(0, 2, 9000))   # all strategies: both cross-process ones


@pytest.mark.parametrize("selected", [["default"], ["default", "multi_worker"]])
def test_single_process_cells_in_a_step_of_several_tasks_are_refused_on_every_task(tmp_path, selected):
    """Each task ran them at once (two on a node: DISTURBED 44% and 51%), and each saved its
    own run; beside a cluster cell, every task still timed them, the chief's disturbed."""
    for rank in (0, 1):
        with pytest.raises(UserError, match=r"^A SLURM job step of 2 tasks runs distbench on every task, so each "
                                            r"would measure default at once, one run per task: measure single-process "
                                            r"cells in a step of one task \(srun -n 1\)"):
            slurm.apply(selected, 1, 0, _step(rank, 2, 9000))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CONFIG")}
    argv = [sys.executable, "-m", "distbench", "run", *(a for s in selected for a in ("--strategy", s)), "--results",
            str(tmp_path / "results")]
    assert slurm.apply(["theirs"], 1, 0, _step(0, 2, 9000), single=[]) is None   # a plugin's cross-process strategy
    result = subprocess.run(argv, env={**env, **_step(1, 2, 9000)}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("distbench: error: A SLURM job step of 2 tasks"), \
        result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and not (tmp_path / "results").exists()


def _nodes(rank: int, **extra) -> dict:
    """Four tasks on node9 and node10, two each (SLURM's block layout: ranks 0, 1 on node9)."""
    return {"SLURM_PROCID": str(rank), "SLURM_STEP_NUM_TASKS": "4", "SLURM_STEP_NODELIST": "node[9-10]",
            "SLURM_STEP_TASKS_PER_NODE": "2(x2)", **extra}


def test_ranks_get_their_own_node_s_address_in_slurm_s_order():
    """TensorFlow's resolver sorted the node names: rank 0, on node9, was told node10:8888."""
    config = slurm.tf_config("parameter_server", 1, _nodes(0, SLURMD_NODENAME="node9", SLURM_LOCALID="0"))
    assert config == {"cluster": {"chief": ["node9:8888"], "ps": ["node9:8889"],
                                  "worker": ["node10:8888", "node10:8889"]}, "task": {"type": "chief", "index": 0}}
    assert slurm.tf_config("multi_worker", 1, _nodes(3))["task"] == {"type": "worker", "index": 3}
    with pytest.raises(UserError, match=r"^This task \(rank 0\) runs on node10 as local task 0, but the step's block "
                                        r"layout puts rank 0 on node9 as local task 0: run the step with "
                                        r"--distribution=block"):
        slurm.tf_config("multi_worker", 1, _nodes(0, SLURMD_NODENAME="node10", SLURM_LOCALID="0"))
    with pytest.raises(UserError, match=r"^Cannot read this SLURM job step's nodes \(SLURM_STEP_NODELIST='node\[9-'"):
        slurm.tf_config("multi_worker", 1, {**_nodes(0), "SLURM_STEP_NODELIST": "node[9-"})


@pytest.mark.parametrize("name, value, said", [
    ("SLURM_PROCID", "x", "SLURM_PROCID='x' is no integer; SLURM sets it for each task of a job step (srun)"),
    ("SLURM_STEP_NUM_TASKS", "two", "SLURM_STEP_NUM_TASKS='two' is no integer;"),
    ("SLURM_LOCALID", "zz", "SLURM_LOCALID='zz' is no integer;"),
    ("DISTBENCH_SLURM_PORT_BASE", "23456x", "DISTBENCH_SLURM_PORT_BASE='23456x' is no integer;"),
    ("DISTBENCH_SLURM_PORT_BASE", "65535", "DISTBENCH_SLURM_PORT_BASE=65535: this step's 4 tasks take ports from it "
                                           "up; give a port from 1024 to 65532."),
    ("SLURM_PROCID", "5", "SLURM_PROCID=5 is not a rank of this job step's 4 tasks (0 to 3); set TF_CONFIG yourself."),
    ("SLURM_STEP_NUM_TASKS", "5", "This SLURM job step's layout (node[9-10], tasks per node 2(x2)) holds 4 tasks, "
                                  "not its 5 (SLURM_STEP_NUM_TASKS); set TF_CONFIG yourself."),
])
def test_a_step_variable_that_is_no_integer_or_out_of_range_is_one_line(name, value, said):
    """They were tracebacks (int()'s ValueError); a port base of 65535 waited out the connect
    deadline for port 65536; a rank past the step read "holds 4 tasks, not its 4"."""
    with pytest.raises(UserError) as refused:
        slurm.tf_config("multi_worker", 1, _nodes(0, **{name: value}))
    assert str(refused.value).startswith(said), str(refused.value)


def test_a_node_s_gpus_are_shared_among_its_tasks_within_what_the_job_sees():
    assert slurm.gpu_share(4, _nodes(1)) == "2,3"                     # local task 1 of 2: the second half
    assert slurm.gpu_share(2, _nodes(1, CUDA_VISIBLE_DEVICES="6,7")) == "7"   # not physical GPU 1
    assert slurm.gpu_share(1, _nodes(1, SLURM_GPUS_PER_TASK="1", CUDA_VISIBLE_DEVICES="3")) is None   # SLURM's own
    assert slurm.gpu_share(0, _nodes(1)) is None
    # Two tasks, one GPU: the resolver's share of 0 ended in a traceback (range() arg 3 must not be zero).
    with pytest.raises(UserError, match="^2 tasks of this SLURM job step share this node's 1 GPUs: give each task"):
        slurm.gpu_share(1, _nodes(0))


def test_a_one_task_step_is_no_cluster():
    """``srun --pty bash``: a plain run was refused ("select --strategy multi_worker ...")."""
    assert not slurm.in_job_step(_step(0, 1, 9000)) and slurm.apply([], 1, 0, _step(0, 1, 9000)) is None


@pytest.mark.slow
def test_a_two_task_job_step_trains_multi_worker_and_rank_0_saves(tmp_path):
    port = cluster.free_ports(1)[0]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CONFIG")}
    argv = [sys.executable, "-m", "distbench", "run", "--strategy", "multi_worker", "--loop", "custom", "--keras",
            "keras3", "--workload", "reuters_cnn", "--data", "synthetic", "--steps-per-epoch", "20", "--epochs", "1",
            "--guard-seeds", "0", "--no-peak", "--eval-examples", "64"]
    tasks = [subprocess.Popen(argv + ["--results", str(tmp_path / f"rank{rank}")], env={**env, **_step(rank, 2, port)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
             for rank in range(2)]
    outputs = [t.communicate(timeout=300)[0] for t in tasks]
    assert [t.returncode for t in tasks] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    assert "reuters_cnn-multi_worker-custom: ok" in outputs[0]
    (path,) = (tmp_path / "rank0").glob("*/*.json")
    assert not list((tmp_path / "rank1").glob("**/*.json"))   # only the chief saves
    record = json.loads(path.read_text())["benchmarks"][0]["extra_info"]["distbench"]["repeats"][0]
    strategy = record["strategy"]
    assert (strategy["cluster"], strategy["workers"], strategy["replicas"], strategy["task_index"]) == ("slurm", 2, 2, 0)
    assert strategy["notes"][0] == f"2 worker processes (127.0.0.1:{port}, 127.0.0.1:{port + 1})"
    assert gone(record["worker_pid"])


def test_list_in_a_job_step_names_the_step_s_tasks_not_local_processes(monkeypatch, capsys):
    from distbench.cli.main import main

    monkeypatch.delenv("TF_CONFIG", raising=False)
    for name, value in _step(0, 4, 23456).items():
        monkeypatch.setenv(name, value)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("multi_worker", "parameter_server"):
        assert f"  {name:18} available: this SLURM job step's 4 tasks (select one cross-process strategy per step)" \
            in out, out
    assert "TF_CONFIG" not in os.environ   # list sets nothing


def test_list_in_a_job_step_says_what_run_would_refuse_of_it(monkeypatch, capsys):
    """A step of 2 tasks was "available" for parameter_server, which run refused (no worker
    left after the chief and a parameter server); so was a rank outside the step."""
    from distbench.cli.main import main

    monkeypatch.delenv("TF_CONFIG", raising=False)
    for name, value in _step(0, 2, 23456).items():
        monkeypatch.setenv(name, value)
    assert main(["list"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "multi_worker available: this SLURM job step's 2 tasks" in out, out
    assert "parameter_server unavailable: A SLURM job step of 2 tasks has no worker left" in out, out
    monkeypatch.setenv("SLURM_PROCID", "5")
    assert main(["list"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.count("unavailable: ") >= 2 and "SLURM_PROCID=5 is not a rank of this job step's 2 tasks (0 to 1)" in out


def test_serve_on_a_step_s_rank_0_names_the_rank_not_a_tf_config(monkeypatch, capsys):
    """Rank 0 of a step is the chief; serve there said "TF_CONFIG's task is the chief", of a
    TF_CONFIG the user never set (a user's trial)."""
    from distbench.cli.main import main

    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv(slurm.SOURCE_ENV, raising=False)
    for name, value in _step(0, 3, 23456).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TF_CONFIG", "")   # what serve's SLURM step sets is undone after the test
    monkeypatch.setenv(slurm.SOURCE_ENV, "")
    assert main(["serve"]) == 2
    assert capsys.readouterr().err == ("distbench: error: this SLURM task is rank 0 of its job step, the chief: run "
                                       "`distbench run --strategy parameter_server` there; serve runs on the worker "
                                       "and ps tasks.\n")
