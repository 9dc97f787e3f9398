"""The device probe: a device TensorFlow lists but cannot compute on skips its cell with the reason.

The failures a GPU machine shows (an error at the first cuBLAS or cuDNN call, XLA without
libdevice, a wrong value, an operation moved to another device) are made here at the
point where TensorFlow is asked; one is real on any CPU-only machine: an operation asked
for a GPU that is not there runs on the CPU instead (soft placement).
"""

import dataclasses
import socket
import threading
import time

import pytest
from distbench.launchers import cluster
from distbench.scenarios.tasks import run_cell
from distbench.strategies import hardware, probe
from distbench.strategies.connect import silent


def test_the_session_cpus_pass_the_probe_with_and_without_xla():
    assert probe.unusable(["/CPU:0", "/CPU:1"]) is None
    assert probe.unusable(["/CPU:0"], jit_compile=True) is None


def test_an_operation_that_soft_placement_moved_elsewhere_is_found():
    reason = probe.unusable(["/CPU:0", "/GPU:0"])   # no GPU here: TensorFlow runs it on the CPU
    assert reason.startswith("/GPU:0 is listed by TensorFlow but cannot run the cell's operations: matrix product "
                             "asked for /GPU:0 ran on /job:localhost/replica:0/task:0/device:CPU:0")


def test_a_failing_library_call_is_named_with_the_error(monkeypatch):
    import tensorflow as tf

    def no_dnn(*args, **kwargs):
        raise tf.errors.UnimplementedError(None, None, "DNN library is not found.\nmore lines")

    monkeypatch.setattr(tf.nn, "conv1d", no_dnn)
    assert ("1-D convolution failed: UnimplementedError: DNN library is not found."
            in probe.unusable(["/CPU:0"]))


def test_xla_without_libdevice_is_probed_only_for_xla_cells(monkeypatch):
    import tensorflow as tf

    real = tf.function

    def no_libdevice(fn=None, jit_compile=None, **kwargs):
        if not jit_compile:
            return real(fn, **kwargs)

        def fails(*args):
            raise tf.errors.InternalError(None, None, "libdevice not found at ./libdevice.10.bc")

        return fails

    monkeypatch.setattr(tf, "function", no_libdevice)
    assert probe.unusable(["/CPU:0"], jit_compile=False) is None
    reason = probe.unusable(["/CPU:0"], jit_compile=True)
    assert "XLA-compiled matrix product (jit_compile) failed: InternalError: libdevice not found" in reason


def test_a_wrong_value_fails_the_probe(monkeypatch):
    import tensorflow as tf

    monkeypatch.setattr(tf.linalg, "matmul", lambda a, b, **kw: tf.zeros((1, 1)))
    assert "matrix product returned 0.0, expected 5.0" in probe.unusable(["/CPU:0"])


def test_tpu_devices_are_left_to_the_tpu_connect_step():
    assert probe.unusable(["/TPU:0"]) is None


def test_a_listed_gpu_that_cannot_compute_skips_the_cell_with_the_reason(tiny, monkeypatch):
    from distbench.strategies import devices

    # A machine whose TensorFlow lists a GPU (faked: this one has none, so work asked for it
    # lands on the CPU, as on a GPU TensorFlow cannot use); the device set-up is left out,
    # as this process's devices are the test session's.
    listed = dataclasses.replace(hardware.detect(), gpus=("/physical_device:GPU:0",))
    monkeypatch.setattr(devices, "apply", lambda setup: None)
    record = run_cell(tiny("reuters_cnn", "one_gpu", "custom"), listed)
    assert record["status"] == "skipped"
    assert record["reason"].startswith("/GPU:0 is listed by TensorFlow but cannot run the cell's operations")
    assert record["strategy"]["devices"] == ["/GPU:0"] and "step_time" not in record


@pytest.mark.slow
def test_a_cluster_worker_that_skips_ends_the_cluster_promptly(tiny, tmp_path):
    """Worker 1's device fails the probe while worker 0 waits in its first collective:
    the cell is skipped with worker 1's reason long before the deadline, nothing left."""
    from tests.processes import gone

    path = tmp_path / "half_gpu.py"
    path.write_text(
        "from distbench.strategies.multi_worker import MultiWorkerAdapter, tf_config\n"
        "class HalfGpu(MultiWorkerAdapter):\n"
        "    name = 'half_gpu_multi_worker'\n"
        "    summary = 'worker 1 asks for a GPU that is not there'\n"
        "    def device_names(self, hw):\n"
        "        return ['/GPU:0'] if (tf_config() or {}).get('task', {}).get('index') == 1 else ['/CPU:0']\n"
    )
    from distbench import plugins
    from distbench.strategies import STRATEGIES

    name = plugins.load(f"{path}:HalfGpu", "strategy")
    spec = tiny("reuters_cnn", name, "custom", plugins=(f"strategy={path}:HalfGpu",), epochs=50,
                steps_per_epoch=1000, deadline_s=300)
    pids, began = [], time.monotonic()
    try:
        record = cluster.launch_cluster(spec, on_start=pids.extend)
    finally:
        STRATEGIES.unregister(name)   # the registry is this process's: later tests list its names
    assert time.monotonic() - began < 120
    assert record["status"] == "skipped", record.get("reason")
    assert record["reason"].startswith("worker 1: /GPU:0 is listed by TensorFlow but cannot run")
    assert all(gone(pid) for pid in pids)


def test_a_connect_deadline_names_the_tasks_where_nothing_listens():
    """What a connect deadline's reason adds: the cluster's addresses that accept no
    connection now; one that listens (a task up, not yet joined) and this task's own are not
    named."""
    with socket.socket() as up:
        up.bind(("127.0.0.1", 0))
        up.listen()
        listening = f"127.0.0.1:{up.getsockname()[1]}"
        down, own = (f"127.0.0.1:{p}" for p in cluster.free_ports(2))
        assert silent({"chief": [own], "worker": [listening, down]}, skip=own) == (
            f"; nothing accepts a connection at worker 1 ({down}: Connection refused)")
        assert silent({"worker": [listening]}) == "" and silent({"worker": [own]}, skip=own) == ""


def test_a_connect_deadline_s_probe_of_a_name_that_never_resolves_ends(monkeypatch):
    """A socket's timeout does not bound its name lookup: a cluster address whose DNS never
    answers held the deadline's reason (and the cell) for as long as the lookup took. It is
    named after twice the probe's time, the lookup left on a daemon thread."""
    from distbench.strategies import connect

    hung = threading.Event()

    def lookup_that_hangs(address, timeout=None):
        hung.wait(60)
        raise OSError("never")

    monkeypatch.setattr(connect.socket, "create_connection", lookup_that_hangs)
    monkeypatch.setattr(connect, "PROBE_S", 0.2)
    began = time.monotonic()
    said = silent({"worker": ["nowhere.invalid:2222"]})
    hung.set()
    assert said == "; nothing accepts a connection at worker 0 (nowhere.invalid:2222: no answer within 0.4 s)"
    assert time.monotonic() - began < 30
