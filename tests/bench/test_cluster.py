"""MultiWorkerMirroredStrategy on real local worker processes: runs, faults, no leftovers."""

import json
import os
import signal
import threading
import time

import pytest
from distbench.core.config import CellSpec
from distbench.launchers import cluster
from distbench.session.plan import skip_reason
from distbench.strategies import hardware, slurm

from tests.processes import gone

pytestmark = pytest.mark.slow


class _EndsWhenAsked:
    """A task that writes an error record and exits 0 at the ``ends_at``-th time it is polled."""

    def __init__(self, record_path, ends_at):
        self.pid, self.returncode, self._polls, self._ends_at, self._path = 4242, None, 0, ends_at, record_path

    def poll(self):
        self._polls += 1
        if self._polls == self._ends_at:
            self._path.write_text(json.dumps({"status": "error", "reason": "its collective failed"}))
            self.returncode = 0
        return self.returncode


@pytest.mark.parametrize("ends_at", [1, 2, 3, 4])
def test_a_task_that_fails_while_its_cluster_is_watched_is_never_read_as_success(tmp_path, ends_at):
    """A task that wrote an error record and ended between the watch's reading of records
    and its check that all had ended: the cluster read as a success (the chief's ok record)."""
    chief = cluster._Worker(0, _EndsWhenAsked(tmp_path / "never.json", ends_at=10**9), "", "", {}, kind="chief")
    chief.proc.returncode = 0   # ended ok already
    chief.proc.poll = lambda: 0
    chief._record = {"status": "ok"}
    path = tmp_path / "record-1.json"
    worker = cluster._Worker(1, _EndsWhenAsked(path, ends_at), str(path), "", {})
    assert cluster._watch([chief, worker], deadline_s=30) == "worker 1 (pid 4242) failed: its collective failed"


def test_tasks_killed_with_their_fork_server_name_it(tmp_path):
    """The fork server both tasks came from killed (the out-of-memory killer's likeliest pick:
    680 MB): the cell said "worker 0 (pid ...) was killed by SIGKILL; worker 1 ..." alone."""
    from types import SimpleNamespace

    proc = SimpleNamespace(pid=5278, server_pid=5187, poll=lambda: -9, returncode=-9, server_gone=lambda: True)
    worker = cluster._Worker(0, proc, str(tmp_path / "record-0.json"), str(tmp_path / "log-0"), {})
    assert worker.failure().startswith("worker 0 (pid 5278) was killed by SIGKILL (its fork server, pid 5187, had "
                                       "ended: it takes its workers with it)"), worker.failure()


def test_a_cluster_past_its_deadline_says_whether_its_tasks_had_joined(tmp_path):
    """Both workers past joining and training when the deadline came: the reason blamed "a
    peer or parameter server that never answered", for a cell longer than --deadline."""
    import subprocess
    import sys

    from distbench.strategies import connect

    def task(k: int, joined: bool) -> cluster._Worker:
        path = str(tmp_path / f"record-{k}-{joined}.json")
        if joined:
            open(connect.joined_path(path), "w").close()
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        return cluster._Worker(k, proc, path, "", {})

    for joined, said in ((True, "(each had joined the cluster: the cell outlasts --deadline, or a task is slow or "
                                "hung after joining"),
                         (False, "(worker 1 had not joined the cluster: a peer or parameter server that never")):
        workers = [task(0, True), task(1, joined)]
        try:
            reason = cluster._watch(workers, deadline_s=0.3)
            unknown = cluster._watch(workers, deadline_s=0.3, marks=False)   # another version's tree
        finally:
            for w in workers:
                w.proc.kill()
                w.proc.wait()
        assert reason.startswith("timed out after 0.3 s with worker 0, worker 1 still running " + said), reason
        assert "never answered keeps it waiting, or the cell outlasts --deadline)" in unknown, unknown


def test_tf_configs_give_each_worker_its_index():
    configs = cluster.tf_configs([1111, 2222])
    assert [c["task"] for c in configs] == [{"type": "worker", "index": 0}, {"type": "worker", "index": 1}]
    assert configs[0]["cluster"] == {"worker": ["127.0.0.1:1111", "127.0.0.1:2222"]}
    assert len(set(cluster.free_ports(3))) == 3


def test_threads_are_split_between_workers_unless_set(tiny):
    spec = cluster.worker_threads(tiny("reuters_cnn", "multi_worker", "custom", workers=2))
    share = max(1, (os.cpu_count() or 1) // 2)
    assert (spec.intra_op_threads, spec.inter_op_threads) == (share, share)
    mine = cluster.worker_threads(tiny("reuters_cnn", "multi_worker", "custom", intra_op_threads=3))
    assert mine.intra_op_threads == 3


@pytest.mark.parametrize("loop", ["fit", "train_on_batch"])
def test_keras3_loops_are_skipped_with_the_upstream_issue_and_tf_keras_runs_them(tiny, loop):
    reason = skip_reason(tiny("reuters_cnn", "multi_worker", loop), hardware.detect())
    assert f"Keras 3 does not support {loop} under MultiWorkerMirroredStrategy (keras-team/keras#20585" in reason
    assert "--keras tf_keras" in reason
    assert skip_reason(tiny("reuters_cnn", "multi_worker", loop, keras="tf_keras"), hardware.detect()) is None


def test_two_local_workers_train_with_the_global_batch(tiny):
    record = cluster.launch_cluster(tiny("reuters_cnn", "multi_worker", "custom", steps_per_epoch=8))
    assert record["status"] == "ok", record.get("reason")
    assert record["strategy"]["workers"] == 2 and record["strategy"]["replicas"] == 2
    assert record["batch"] == {"global": 32, "per_replica": 16, "replicas": 2, "scaling": "strong"}
    assert record["examples_per_second"] == pytest.approx(32 / record["step_time"]["median"])
    assert [w["status"] for w in record["workers"]] == ["ok", "ok"]
    assert all(gone(w["pid"]) for w in record["workers"])
    # Each worker's own time and phases (a straggler shows); the chief's is the record's.
    assert record["workers"][0]["wall_s"] == record["wall_s"] and record["workers"][0]["phases"] == record["phases"]
    assert record["workers"][1]["wall_s"] > record["workers"][1]["phases"]["train_s"] > 0
    share = max(1, (os.cpu_count() or 1) // 2)
    assert record["threads"] == {"intra_op": share, "inter_op": share}


def test_a_killed_worker_ends_the_run_promptly_with_its_name_and_no_leftovers(tiny):
    pids = []
    spec = tiny("reuters_cnn", "multi_worker", "custom", epochs=50, steps_per_epoch=1000, deadline_s=300)

    def kill_worker_1(started):
        pids.extend(started)

        def later():
            time.sleep(15)   # long enough for both to join and start training
            os.kill(started[1], signal.SIGKILL)

        threading.Thread(target=later, daemon=True).start()

    began = time.monotonic()
    record = cluster.launch_cluster(spec, on_start=kill_worker_1)
    assert time.monotonic() - began < 60
    assert record["status"] == "error" and record["error_kind"] == "cluster"
    assert record["reason"].startswith(f"worker 1 (pid {pids[1]}) was killed by SIGKILL")
    assert all(gone(pid) for pid in pids)


def test_a_cluster_past_its_deadline_is_killed(tiny):
    pids = []
    spec = tiny("reuters_cnn", "multi_worker", "custom", epochs=50, steps_per_epoch=1000, deadline_s=6)
    record = cluster.launch_cluster(spec, on_start=pids.extend)
    assert record["error_kind"] == "cluster" and record["reason"].startswith("timed out after 6 s with worker 0")
    assert f"worker 0 (pid {pids[0]}), worker 1 (pid {pids[1]}) killed with SIGKILL" in record["reason"]
    assert all(gone(pid) for pid in pids)


def test_local_workers_get_their_own_gpus():
    from distbench.launchers.cluster import gpu_assignment, gpu_note

    assert gpu_assignment(2, 0) == [None, None]
    assert gpu_assignment(2, 4) == ["0,1", "2,3"]
    assert gpu_assignment(2, 3) == ["0", "1"]            # an equal share; GPU 2 unused
    assert gpu_assignment(3, 2) == ["0", "1", "0"]       # fewer GPUs than workers: shared in turn
    assert "some are shared" in gpu_note(["0", "1", "0"]) and "shared" not in gpu_note(["0,1", "2,3"])
    # Within this process's own CUDA_VISIBLE_DEVICES (positions 0 and 1 were the machine's GPUs 0 and 1).
    assert gpu_assignment(2, 2, "2,3") == ["2", "3"] and gpu_assignment(3, 2, "5, 7") == ["5", "7", "5"]


def test_local_workers_share_the_cpus_this_process_may_use(monkeypatch):
    """A container's 4 CPUs on a 64-core host: each of 2 workers took 32 threads."""
    from distbench.core import cpus
    from distbench.launchers import cluster as local

    monkeypatch.setattr(cpus, "usable_cpus", lambda: 4)
    monkeypatch.setattr(local.os, "cpu_count", lambda: 64)
    spec = local.worker_threads(CellSpec("reuters_cnn", "multi_worker", "custom", workers=2))
    assert (spec.intra_op_threads, spec.inter_op_threads) == (2, 2)


def test_what_a_worker_s_interpreter_must_start_with():
    """Every variable but the per-process ones TensorFlow reads late is part of the
    environment a fork server starts with (one server per such environment)."""
    from distbench.core.lockstep import ENV
    from distbench.launchers.forkserver import start_env

    env = {"CUDA_VISIBLE_DEVICES": "0", "PYTHONPATH": "x", "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CONFIG": "{}", ENV: "/p"}
    assert start_env(env) == {"CUDA_VISIBLE_DEVICES": "0", "PYTHONPATH": "x", "TF_ENABLE_ONEDNN_OPTS": "0"}


def test_multi_worker_chooses_nccl_on_gpus_and_ring_on_cpus():
    import dataclasses

    from distbench import strategies
    from distbench.strategies.hardware import Hardware

    cpu = Hardware(2, (), None, (), False)
    gpu = dataclasses.replace(cpu, gpus=("/physical_device:GPU:0",))
    assert strategies.get("multi_worker").communication_for(cpu) == "ring"
    assert strategies.get("multi_worker").communication_for(gpu) == "nccl"
    assert strategies.get("multi_worker", communication="ring").communication_for(gpu) == "ring"


def test_a_port_taken_before_its_task_binds_it_starts_the_cluster_again_on_new_ports(tiny, monkeypatch):
    """The launcher picks free ports and lets them go for the tasks to bind; another process
    can take one in between. Here one is taken (a real listening socket) on the first try:
    the cell failed with the task's gRPC error; the cluster now starts again on new ports
    and the record says so."""
    import socket

    real, calls = cluster.free_ports, []

    def first_one_taken(n):
        ports = real(n)
        calls.append(ports)
        return [taken.getsockname()[1], *ports[1:]] if len(calls) == 1 else ports

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setattr(cluster, "free_ports", first_one_taken)
        record = cluster.launch_cluster(tiny("reuters_cnn", "multi_worker", "custom", steps_per_epoch=8))
    assert len(calls) == 2
    assert record["status"] == "ok", record.get("reason")
    (note,) = [n for n in record["strategy"]["notes"] if n.startswith("started again on new ports")]
    assert note.startswith("started again on new ports 1 time: a port chosen for a task was taken before it bound it ("), note


def test_one_local_worker_is_recorded_as_one_local_process_not_a_user_s_cluster(monkeypatch):
    """``--workers 1`` and no TF_CONFIG (the cell runs in its one worker process, no cluster
    launched): the record read cluster "tf_config", 0 workers, "0 worker processes ()", and
    its share of peak was left out as another machine's."""
    import tensorflow as tf

    from distbench.session import peak
    from distbench.strategies import for_spec

    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv(slurm.SOURCE_ENV, raising=False)
    adapter = for_spec(CellSpec("reuters_cnn", "multi_worker", "custom", workers=1))
    assert adapter.local_processes() == 1   # run in one worker process, as any one-process cell
    described = adapter.describe(tf.distribute.get_strategy(), hardware.detect())
    assert (described["cluster"], described["workers"]) == ("local", 1), described
    assert described["notes"] == ["1 worker process (--workers 1: this process alone, no cluster)"]
    assert peak.devices_used({"strategy": described}) == 1   # its share of peak is this machine's


@pytest.mark.parametrize("hosts, shared", [
    (["{me}", "{me}"], True),                   # this machine by its name: it read "separate devices"
    (["127.0.0.1", "{address}"], True),          # loopback and this machine's own address
    (["localhost", "localhost"], True),
    (["192.0.2.10", "192.0.2.11"], False),       # two other machines
    (["192.0.2.10", "192.0.2.10"], True),        # two tasks on one other machine
])
def test_a_cluster_s_tasks_on_one_machine_are_shared_hardware_whatever_they_are_called(monkeypatch, hosts, shared):
    """A TF_CONFIG naming this host by its name: two tasks of one machine were recorded as
    separate machines, and their scaling efficiency read as real scaling."""
    import json
    import socket

    import tensorflow as tf

    from distbench.strategies import for_spec
    from distbench.storage.results import CellResult

    me = socket.gethostname()
    own = socket.gethostbyname_ex(me)[2]
    address = next((a for a in own if not a.startswith("127.")), "127.0.0.1")
    workers = [f"{h.format(me=me, address=address)}:{23000 + k}" for k, h in enumerate(hosts)]
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": 0}}))
    monkeypatch.delenv(slurm.SOURCE_ENV, raising=False)
    adapter = for_spec(CellSpec("reuters_cnn", "multi_worker", "custom", workers=2))
    described = adapter.describe(tf.distribute.get_strategy(), hardware.detect())
    assert described["shared_hardware"] is shared, (workers, described)
    result = CellResult.of("reuters_cnn-multi_worker-custom", [{"status": "ok", "strategy": described}])
    assert result.shared_hardware is shared   # the table's reading is the record's (loopback in the notes had won)
