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
    assert slurm.apply(["default"], 1, 0, _step(0, 2, 9000)) is None
    with pytest.raises(UserError, match="A SLURM job step is the cluster of one strategy"):
        slurm.apply([], 1, 0, _step(0, 2, 9000))   # all strategies: both cross-process ones


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
