"""Every workload, adapter and loop exercised in-process on two logical CPU devices."""

import pytest
from distbench.core.errors import UserError
from distbench.scenarios.tasks import run_cell

# mirrored has no GPU here: one CPU replica. virtual: the session's two logical CPUs.
REPLICAS = {"default": 1, "virtual": 2, "mirrored": 1}


@pytest.mark.parametrize("loop", ["fit", "train_on_batch", "custom"])
@pytest.mark.parametrize("strategy", ["default", "virtual", "mirrored"])
def test_reuters_cnn_runs_under_every_strategy_and_loop(tiny, strategy, loop):
    record = run_cell(tiny("reuters_cnn", strategy, loop))
    assert record["status"] == "ok", record.get("reason")
    replicas = REPLICAS[strategy]
    assert record["strategy"]["replicas"] == replicas
    assert record["batch"] == {"global": 32, "per_replica": 32 // replicas, "replicas": replicas, "scaling": "strong"}
    assert record["strategy"]["virtual_devices"] is (strategy == "virtual")
    steps = record["steps"]
    assert steps["total"] == 6 and len(steps["warmup"]) == 1 and len(steps["samples"]) == 4
    assert all(s > 0 for s in steps["samples"]) and steps["cold_start_s"] > 0
    assert record["step_time"]["n"] == 4
    assert record["examples_per_second"] == pytest.approx(32 / record["step_time"]["median"])
    assert record["data"]["source"] == "synthetic"
    assert 0 <= record["accuracy"]["train"] <= 1
    assert set(record["accuracy"]["test"]) == {"examples", "accuracy", "top5_accuracy"}
    # The share of the step spent waiting for input: timed get_next, or (fit) the pipeline alone, a bound.
    waited = record["input"]
    assert 0 <= waited["wait_share"] <= 1 and waited["input_bound"] is (waited["wait_share"] > waited["threshold"])
    assert waited.get("at_most", False) is (loop == "fit") and waited["prefetch"] == "auto"
    assert record["memory"]["peak_rss_bytes"] > 50 * 2**20
    assert 0 < record["memory"]["rss_end_bytes"] <= record["memory"]["peak_rss_bytes"]


@pytest.mark.parametrize("loop", ["fit", "train_on_batch", "custom"])
def test_multibranch_runs_split_across_two_replicas(tiny, loop):
    record = run_cell(tiny("multibranch", "virtual", loop))
    assert record["status"] == "ok", record.get("reason")
    assert record["batch"]["per_replica"] == 16
    assert set(record["accuracy"]["test"]) == {"examples", "accuracy", "auc"}


def test_train_on_batch_feeds_each_replica_half_the_global_batch(tiny):
    record = run_cell(tiny("reuters_cnn", "virtual", "train_on_batch"))
    assert record["loop"]["settings"]["per_replica_feed"] is True
    assert record["batch"]["per_replica"] == 16


def test_train_on_batch_halves_the_learning_rate_at_epoch_5(tiny):
    record = run_cell(tiny("reuters_cnn", "default", "train_on_batch", epochs=5, steps_per_epoch=2))
    settings = record["loop"]["settings"]
    assert settings["lr_halved_at_epoch"] == 5
    assert settings["final_learning_rate"] == pytest.approx(0.0005)


def test_fit_steps_per_execution_is_timed_per_step(tiny):
    record = run_cell(tiny("reuters_cnn", "default", "fit", steps_per_epoch=20, steps_per_execution=5, warmup_steps=5))
    assert record["loop"]["settings"]["steps_per_execution"] == 5
    assert record["steps"]["steps_per_sample"] == 5
    assert len(record["steps"]["samples"]) == 2   # 4 executions: 1 cold, 1 warm-up, 2 steady
    assert record["steps"]["total"] == 20


def test_fit_steps_per_execution_is_forced_to_1_under_multi_replica_mirrored(tiny):
    record = run_cell(tiny("reuters_cnn", "virtual", "fit", steps_per_execution=4, steps_per_epoch=8))
    assert record["loop"]["settings"]["steps_per_execution"] == 1
    assert "keras-team/keras#19246" in record["loop"]["notes"][0]


def test_fit_calls_that_leave_no_steady_call_are_refused_before_training(tiny):
    """mirrored on this CPU has one replica, so fit runs its calls of 100 steps as asked: 8
    steps left no steady call, and the cell failed once it had trained. The plan cannot know
    the replicas (several would run one step a call); the worker refuses before training."""
    with pytest.raises(UserError, match=r"^--steps-per-execution 100 leaves fit no steady call in 1 x 8 training"):
        run_cell(tiny("reuters_cnn", "mirrored", "fit", steps_per_execution=100, steps_per_epoch=8))


def test_a_short_run_learns_better_than_the_majority_class(tiny):
    record = run_cell(tiny("reuters_cnn", "default", "custom", steps_per_epoch=200, eval_examples=2246))
    majority = record["data"]["majority_class_share"]
    assert record["accuracy"]["test"]["accuracy"] > majority + 0.05


def test_matmul_times_the_cpu_and_checks_the_sum(tiny):
    record = run_cell(tiny("matmul", "default", None))
    m = record["matmul"]
    assert m["shape"] == [64, 16, 64] and list(m["devices"]) == ["/CPU:0"]
    cpu = m["devices"]["/CPU:0"]
    assert cpu["sum_rel_error"] < 1e-5 and cpu["gflops"] > 0
    assert len(cpu["samples"]) == 3 and m["speedup_over_cpu"]["/CPU:0"] == 1.0


def test_a_matmul_cell_whose_every_gpu_ran_out_of_memory_is_no_cpu_figure(tiny, monkeypatch):
    """Its GPU out of memory (the seed shape's product is 4 GB), the cell recorded the CPU's
    timing as its own, status ok: matmul-mirrored read as fast as matmul-default. The GPU
    is faked (this machine has none): the adapter lists one and its product fails so."""
    from types import SimpleNamespace

    from distbench import workloads
    from distbench.scenarios import matmul
    from distbench.trackers import memory

    class ResourceExhaustedError(Exception):   # what TensorFlow raises, by its name
        pass

    real = workloads.get("matmul")

    class OnlyCpuFits:
        def __getattr__(self, name):
            return getattr(real, name)

        def operands(self, device, shape, seed):
            if "GPU" in device:
                raise ResourceExhaustedError("OOM when allocating tensor with shape[64,64]")
            return real.operands(device, shape, seed)

    monkeypatch.setattr(memory, "reset_device_peaks", lambda devices: None)
    adapter = SimpleNamespace(compute_devices=lambda hw: ["/GPU:0"])
    with pytest.raises(RuntimeError, match=r"^matmul: no compute device of this cell \(/GPU:0\) could run the "
                                           r"\(64, 16, 64\) product: /GPU:0: ResourceExhaustedError: OOM"):
        matmul.run(tiny("matmul", "mirrored", None), OnlyCpuFits(), adapter, None, None, [])


def test_evaluation_covers_exactly_the_requested_examples(tiny):
    from distbench.workloads.protocol import EVAL_BATCH

    n = EVAL_BATCH + 44   # one whole batch and a remainder
    record = run_cell(tiny("multibranch", "default", "custom", eval_examples=n))
    assert record["accuracy"]["test"]["examples"] == n


def _no_process(spec, **kwargs):
    raise AssertionError(f"a process was started for {spec.id}, which cannot run here")


def test_unavailable_strategies_are_skipped_with_their_reason_before_any_process(tiny):
    from distbench.session.suite import Suite

    record = Suite(launch=_no_process, launch_cluster=_no_process).run(tiny("reuters_cnn", "tpu", "fit"))
    assert record["status"] == "skipped"
    assert record["reason"].startswith("tpu: no TPU found")


def test_a_cell_its_worker_found_it_cannot_run_starts_no_more_processes(tiny):
    """A worker's skip (a loop that cannot train the model): the cell's next repeats reuse
    it; a side of an A/B (its own environment or code) is not assumed to answer alike."""
    from distbench.core.records import skipped
    from distbench.session.suite import Suite

    started = []

    def launch(spec, **kwargs):
        started.append(kwargs)
        if spec.loop == "custom":
            return {**skipped(spec, "custom: the model defines its own train_step (X)"), "lasting": True}
        return skipped(spec, "/GPU:0 failed its probe")   # a device's: the next process probes again

    suite, spec = Suite(launch=launch, launch_cluster=_no_process), tiny("reuters_cnn", "default", "custom")
    records = [suite.run(spec) for _ in range(3)]
    assert [r["status"] for r in records] == ["skipped"] * 3 and len(started) == 1
    suite.run(spec, env={"TF_ENABLE_ONEDNN_OPTS": "0"})
    assert len(started) == 2
    for _ in range(2):
        suite.run(tiny("reuters_cnn", "default", "fit"))
    assert len(started) == 4


def test_matmul_under_mirrored_without_gpu_is_skipped_before_any_process(tiny):
    from distbench.session.suite import Suite
    from distbench.strategies import hardware

    if hardware.detect().gpus:
        pytest.skip("this machine has a GPU")
    record = Suite(launch=_no_process, launch_cluster=_no_process).run(tiny("matmul", "mirrored", None))
    assert record["status"] == "skipped" and "no GPU to time" in record["reason"]


def test_unknown_loop_is_refused_before_any_work(tiny):
    with pytest.raises(UserError, match="Unknown loop 'fitt'"):
        run_cell(tiny("reuters_cnn", "default", "fitt"))


def test_the_seed_makes_a_cell_reproducible(tiny):
    first = run_cell(tiny("reuters_cnn", "default", "custom", seed=7))
    again = run_cell(tiny("reuters_cnn", "default", "custom", seed=7))
    assert first["accuracy"]["train_loss"] == pytest.approx(again["accuracy"]["train_loss"], rel=1e-5)
    assert first["accuracy"]["test"] == again["accuracy"]["test"]


def test_short_reason_keeps_the_first_and_the_telling_last_line():
    from distbench.core.records import short_reason

    tf_error = ("InvalidArgumentError: Graph execution error:\n\nDetected at node X\n  File \"a.py\", line 1\n"
                "Trying to access resource v located in device CPU:1\n\t [[{{node StatefulPartitionedCall}}]]")
    assert short_reason({"reason": tf_error}) == (
        "InvalidArgumentError: Graph execution error: ... Trying to access resource v located in device CPU:1")
    assert short_reason({"reason": "no GPU found"}) == "no GPU found"
    # Keras 3 bolds its messages: the escapes had reached the terminal and CI logs as "[1m".
    assert short_reason({"reason": "Exception encountered when calling Trap.call().\n\n\x1b[1meval trap fired\x1b[0m"}
                        ) == "Exception encountered when calling Trap.call(). ... eval trap fired"
    collective = "worker 1 (pid 32164) failed: " + "UnavailableError: collective ops " * 11   # about 370
    assert short_reason({"reason": collective}) == collective.strip()
    # A TF_CONFIG multi_worker peer lost mid-cell (worker 1 SIGKILLed): the line had been
    # TensorFlow's advice, "The error could be from a previous operation. Restart your program to reset."
    lost = ("UnavailableError: Graph execution error:\n\nDetected at node CollectiveReduceV2_1 defined at (most recent "
            "call last):\n  File \"/w/bench/loops/custom.py\", line 80, in train_step\n\nCollective ops is aborted by: "
            "Error reported from /job:worker/task:1: The following tasks are unhealthy (stopped sending heartbeats):\n"
            "/job:worker/replica:0/task:1\nThe tasks have crashed. Check the task logs for an earlier error, or "
            "scheduler events (e.g. preemption, eviction) to debug further.\nThe error could be from a previous "
            "operation. Restart your program to reset.\n\t [[{{node CollectiveReduceV2_1}}]] "
            "[Op:__inference_train_step_1627]")
    assert short_reason({"reason": lost}) == (
        "UnavailableError: Graph execution error: ... Collective ops is aborted by: Error reported from "
        "/job:worker/task:1: The following tasks are unhealthy (stopped sending heartbeats): "
        "/job:worker/replica:0/task:1")
    cut = short_reason({"reason": "x" * 1000})
    shown = cut[:cut.index(" [")]
    assert len(cut) <= 800 and shown == "x" * len(shown)
    assert cut.endswith(f" [{1000 - len(shown)} more characters in the stored record]")


def test_matmul_keeps_the_cpu_figure_when_another_device_runs_out_of_memory(tiny, monkeypatch):
    """A device that cannot hold the product is recorded as such; the others' figures stay.
    (The session's second logical CPU stands in for a GPU that fails, the first for one that
    does not; with none of the cell's devices left, the cell fails: the test of every GPU out of memory.)"""
    import distbench.strategies.default as default
    import tensorflow as tf
    from distbench.workloads.matmul import Matmul

    monkeypatch.setattr(default.DefaultAdapter, "compute_devices", lambda self, hw: ["/CPU:1", "/CPU:0"],
                        raising=False)
    real = Matmul.step

    def step(device, a, b):
        if device == "/CPU:1":
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[64,64]")
        return real(device, a, b)

    monkeypatch.setattr(Matmul, "step", staticmethod(step))
    record = run_cell(tiny("matmul", "default", None))
    m = record["matmul"]
    assert record["status"] == "ok" and list(m["devices"]) == ["/CPU:0"] and m["primary_device"] == "/CPU:0"
    assert m["failed_devices"]["/CPU:1"].startswith("ResourceExhaustedError: OOM when allocating")
    cpu = m["devices"]["/CPU:0"]
    assert cpu["reference_sum"] == pytest.approx(cpu["sum"], rel=1e-5)
    # U(0, 3) operands: the sum's expectation is 1.5 x 1.5 x M x K x N.
    assert cpu["reference_sum"] == pytest.approx(2.25 * 64 * 16 * 64, rel=0.1)


def test_steps_per_execution_is_forced_to_1_only_where_keras_fails():
    from distbench.loops.fit import spe_unsupported

    def strategy(cls_name, replicas):
        return type(cls_name, (), {"num_replicas_in_sync": replicas})()

    assert spe_unsupported(strategy("MirroredStrategy", 2))
    assert spe_unsupported(strategy("MultiWorkerMirroredStrategy", 4))
    assert not spe_unsupported(strategy("MirroredStrategy", 1))
    assert not spe_unsupported(strategy("TPUStrategy", 8))       # keras-team/keras#19246 is MirroredStrategy's


def test_device_memory_is_read_for_gpus_and_tpus_by_their_short_names():
    from distbench.trackers.memory import _gpus

    assert _gpus(["/CPU:0", "/GPU:1", "/job:worker/replica:0/task:0/device:TPU:3", "/device:GPU:0"]) == [
        "GPU:1", "TPU:3", "GPU:0"]


def test_mirrored_replicas_reduce_with_the_cross_device_ops_asked_for(tiny):
    record = run_cell(tiny("reuters_cnn", "virtual", "custom", cross_device_ops="one_device"))
    assert record["status"] == "ok", record.get("reason")
    assert record["strategy"]["cross_device_ops"] == "one_device" and record["strategy"]["replicas"] == 2
    assert record["cell"] == "reuters_cnn-virtual-custom-one_device"


def test_prefetch_off_leaves_nothing_filling_batches_ahead_of_the_step():
    """A slow map (3 ms an example, 16 to a batch) before distbench's batch: with ``off`` a
    batch is made only when the step asks for it, however long the step was away; with
    ``auto`` it is ready. tf.data's map-and-batch fusion had filled batches ahead under ``off``."""
    import time

    import numpy as np
    import tensorflow as tf
    from distbench.loops.base import prefetched

    def slow(v):
        time.sleep(0.003)
        return v

    def waits(prefetch):
        ds = tf.data.Dataset.from_tensor_slices(np.zeros((256, 8), np.float32))
        ds = ds.map(lambda v: tf.ensure_shape(tf.py_function(slow, [v], tf.float32), (8,)))
        batches = iter(prefetched(ds.batch(16, drop_remainder=True).repeat(), prefetch))
        next(batches)
        found = []
        for _ in range(5):
            time.sleep(0.5)                     # the step is away: anything running ahead fills a batch
            started = time.perf_counter()
            next(batches)
            found.append(time.perf_counter() - started)
        return sorted(found)

    assert waits("off")[0] >= 16 * 0.003        # every batch made while the step waited: 16 sleeps of 3 ms
    assert waits("auto")[0] < 16 * 0.003 / 2    # made while the step was away (the control: it can see run-ahead)


def test_a_loop_that_runs_its_own_step_cannot_train_a_model_with_its_own_train_step():
    """fit and train_on_batch call a model's own train_step; the custom loop (and a user's
    subclass of it) runs its own step, so it skips such a model, with the reason (it had
    measured it, said only in a record note)."""
    import keras
    from distbench import loops
    from distbench.loops.base import own_train_step

    class OwnStep(keras.Model):
        def train_step(self, data):
            return super().train_step(data)

    class Frozen(loops.get("custom").__class__):
        name = "frozen"

    plain = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    own = OwnStep(plain.inputs, plain.outputs)
    assert own_train_step(loops.get("custom"), plain) is None
    assert [own_train_step(loops.get(name), own) for name in ("fit", "train_on_batch")] == [None, None]
    for loop in (loops.get("custom"), Frozen()):
        reason = own_train_step(loop, own)
        assert reason.startswith(f"{loop.name}: the model defines its own train_step (") and "OwnStep)" in reason