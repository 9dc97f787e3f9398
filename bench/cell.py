"""Child side: runs one cell in this process: device set-up, strategy, workload, loop,
measurement.

The parent (:mod:`bench.suite`) has already planned the cell and decided that it can run
here (:func:`bench.plan.skip_reason`); a worker process (:mod:`bench.worker`) calls
:func:`run_cell` once, because device set-ups differ between strategies and TensorFlow
allows one per process. Tests call it in-process on CPU logical devices.
"""

from __future__ import annotations

import time

import bench.loops as loops
import strategies
import workloads
from bench import disturbance, lockstep, memory, plugins, stats
from bench.config import CellSpec
from bench.errors import UserError
from bench.plan import adapter_for
from bench.records import CellRecord, skipped
from bench.timing import StepClock, StepTimes, time_repeats
from strategies import devices, hardware, probe
from strategies.hardware import Hardware
from workloads.matmul import SUM_RTOL

EVAL_BATCH = 1024   # evaluation batches: at 256, eager calls cost multibranch twice the time


def run_cell(spec: CellSpec, hw: Hardware | None = None) -> CellRecord:
    """Runs ``spec`` here and returns its record."""
    started = time.perf_counter()
    spec.validate()
    plugins.ensure(spec.plugins)   # classes from outside distbench, as the parent loaded them
    workload = workloads.get(spec.workload)
    if spec.loop is not None:
        loops.get(spec.loop)  # unknown loop names fail before any set-up
    hw = hw or hardware.detect()
    adapter, strategy = start_strategy(spec, hw)
    unusable = probe.unusable(list(dict.fromkeys(adapter.device_names(hw) + adapter.compute_devices(hw))),
                              spec.jit_compile)
    if unusable:
        return {**skipped(spec, unusable), "strategy": adapter.describe(strategy, hw)}
    set_up_s = time.perf_counter() - started
    record: CellRecord = {
        "cell": spec.id,
        "status": "ok",
        "config": spec.to_dict(),
        "definition": definition(workload, spec.loop),
        "strategy": adapter.describe(strategy, hw),
    }
    record.update(_RUNNERS[workload.kind](spec, workload, adapter, strategy, hw, record["strategy"]["devices"]))
    record["threads"] = _threads()
    record["wall_s"] = time.perf_counter() - started
    record.setdefault("phases", {})["set_up_s"] = set_up_s
    return record


def definition(workload, loop: str | None) -> dict:
    """Hashes of what the cell ran: the workload's module source (its model, data shapes,
    metrics) and the training loop's. Two runs whose hashes differ ran different code
    (asv's benchmark version); ``compare`` says so (bench.compare)."""
    import hashlib
    import inspect
    import sys

    def digest(cls) -> str:
        module = sys.modules.get(cls.__module__)
        try:
            source = inspect.getsource(module) if module else inspect.getsource(cls)
        except (OSError, TypeError):
            source = cls.__qualname__
        return hashlib.sha1(source.encode()).hexdigest()[:12]

    found = {"workload": digest(type(workload))}
    if loop is not None:
        found["loop"] = digest(type(loops.get(loop)))
    return found


def start_strategy(spec: CellSpec, hw: Hardware) -> tuple[strategies.StrategyAdapter, object]:
    """This process's thread pools and devices for ``spec``, then its strategy (once per process)."""
    adapter = adapter_for(spec)
    _set_threads(spec)
    devices.apply(adapter.device_setup(hw))
    return adapter, adapter.build(hw)


def build_model(spec: CellSpec, workload, data, strategy):
    """The workload's model in the strategy's scope, initialised from the cell's training seed."""
    import keras

    keras.utils.set_random_seed(spec.training_seed)
    with strategy.scope():
        return workload.build_model(data.vocab_size)


def _threads() -> dict:
    import tensorflow as tf

    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def _set_threads(spec: CellSpec) -> None:
    """Thread-pool sizes, which (like devices) must be set before the runtime starts."""
    if not (spec.intra_op_threads or spec.inter_op_threads):
        return
    import tensorflow as tf

    try:
        if spec.intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(spec.intra_op_threads)
        if spec.inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(spec.inter_op_threads)
    except RuntimeError as exc:
        raise devices.DeviceSetupError(
            f"Cannot set thread counts: TensorFlow's runtime already started in this process ({exc}); "
            "run the cell in a fresh process."
        ) from None


def _run_training(spec: CellSpec, workload, adapter, strategy, hw: Hardware, device_names: list[str]) -> dict:
    replicas = int(strategy.num_replicas_in_sync)
    global_batch = _global_batch(spec, replicas)
    phases = _Phases()
    data = workload.load_data(spec.data, spec.seed)
    phases.end("data_s")
    steps_per_epoch = spec.steps_per_epoch or len(data.y_train) // global_batch
    # A time-to-target cell trains up to its step budget; the target stops it earlier.
    epochs = -(-spec.max_steps // steps_per_epoch) if spec.is_target else spec.epochs
    config = loops.TrainConfig(
        epochs=epochs, steps_per_epoch=steps_per_epoch, global_batch=global_batch,
        steps_per_execution=spec.steps_per_execution, seed=spec.training_seed,
        jit_compile=spec.jit_compile,
    )
    memory.reset_device_peaks(device_names)
    model = build_model(spec, workload, data, strategy)
    plain = workload.build_model(data.vocab_size)   # evaluation's strategy-free copy
    phases.end("build_s")
    clock = lockstep.clock()   # in lockstep with a partner process when the parent asked (bench.ab)
    tracker = _tracker(spec, workload, plain, model, data, clock)
    meter = disturbance.Meter()
    if tracker:
        tracker.start()
    loop = loops.get(spec.loop)
    ctx = loops.TrainContext(strategy, workload, model, data, config, clock, tracker)
    outcome = loop.train(ctx)
    disturbed = meter.stop()
    lockstep.finish(clock)
    phases.end("train_s")
    times = StepTimes.split(clock, spec.warmup_steps)
    if not times.steady:
        raise UserError(
            f"No steady-state steps left after the cold start and {spec.warmup_steps} warm-up "
            f"steps ({clock.total_steps} steps ran); run more steps or fewer warm-up steps."
        )
    peaks = memory.device_peaks(device_names)   # before evaluation places another model
    compute = _compute(workload, plain, data, config.global_batch)
    phases.end("flops_s")
    # A target cell's last evaluation is its test result (the model has not changed since).
    test = tracker.last if tracker else _evaluate(workload, plain, model, data, spec.eval_examples)
    phases.end("evaluate_s")
    cost = _timing_cost(spec, loop, ctx)
    phases.end("timing_cost_s")
    record = _training_record(spec, workload, data, config, replicas, clock, times, outcome, test, peaks)
    if cost:
        record["loop"]["timing_cost"] = cost
    if tracker:
        record["target"] = tracker.record()
    return {**record, "compute": compute, "phases": phases.seconds, "disturbance": disturbed}


def _timing_cost(spec: CellSpec, loop, ctx) -> dict | None:
    """What timing each step costs the loop (fit's callback), measured last: it trains the
    model further. Not for the guard's replicates or time-to-target cells."""
    if not spec.timing_cost_pairs or spec.is_replicate or spec.is_target:
        return None
    return loop.timing_cost(ctx, spec.timing_cost_pairs)


def _tracker(spec: CellSpec, workload, plain, model, data, clock):
    """The time-to-target tracker of a target cell (None for any other cell)."""
    if not spec.is_target:
        return None
    from bench import target

    return target.Tracker(target.parse(spec.target),
                          lambda: _evaluate(workload, plain, model, data, spec.eval_examples),
                          spec.eval_every, spec.max_steps, clock)


def _compute(workload, plain, data, global_batch: int) -> dict:
    """FLOPs of one training step of the global batch (:mod:`bench.flops`); the run's
    measured peak is added by the parent (:func:`bench.peak.apply`)."""
    import tensorflow as tf

    from bench import flops

    x = tf.TensorSpec((global_batch, *data.x_train.shape[1:]), tf.as_dtype(data.x_train.dtype))
    y = tf.TensorSpec((global_batch, *data.y_train.shape[1:]), tf.as_dtype(data.y_train.dtype))
    count = flops.train_step_flops(plain, workload.loss(), workload.optimizer(), x, y)
    return {"flops_per_step": count["per_step"], "flops": count}


class _Phases:
    """Wall time of each phase of a cell in this process (where a cell's time goes)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def end(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self._last
        self._last = now


def _global_batch(spec: CellSpec, replicas: int) -> int:
    global_batch = spec.global_batch * replicas if spec.scaling == "weak" else spec.global_batch
    if global_batch % replicas:
        raise UserError(
            f"Global batch {spec.global_batch} is not divisible by {replicas} replicas of "
            f"{spec.strategy}; use a multiple of {replicas}."
        )
    return global_batch


def _training_record(spec: CellSpec, workload, data, config, replicas: int, clock, times, outcome, test,
                     peaks) -> dict:
    summary = stats.summarize(times.steady)
    return {
        "data": data.describe(),
        "batch": {"global": config.global_batch, "per_replica": config.global_batch // replicas,
                  "replicas": replicas, "scaling": spec.scaling},
        "steps": {
            "epochs": config.epochs,
            "steps_per_epoch": config.steps_per_epoch,
            "total": clock.total_steps,
            "cold_start_s": times.cold_start_s,
            "warmup": times.warmup,
            "steps_per_sample": times.steps_per_sample,
            "samples": times.steady,
        },
        "step_time": summary.as_dict(),
        "examples_per_second": stats.throughput(config.global_batch, summary.median),
        "accuracy": {"train": outcome.train_accuracy, "train_loss": outcome.train_loss, "test": test,
                     "guard_metric": workload.guard_metric},
        "loop": {"name": spec.loop, "settings": outcome.settings, "notes": outcome.notes},
        "memory": {
            "peak_rss_bytes": memory.peak_rss_bytes(),
            "rss_end_bytes": memory.rss_bytes(),
            "device_peak_bytes": peaks,
        },
    }


def _evaluate(workload, plain, model, data, limit: int | None) -> dict:
    """Test metrics on the first ``limit`` test examples, from a plain copy of the model.

    The trained weights are copied into a model built outside any strategy, so the
    evaluation is the same under every strategy and collective-free: a distributed
    model called outside ``strategy.run`` under MultiWorkerMirroredStrategy does not
    return one row per input, and Keras's ``predict`` there is a collective every
    worker would have to join.
    """
    import numpy as np

    plain.set_weights(model.get_weights())
    n = len(data.y_test) if limit is None else min(limit, len(data.y_test))
    x = data.x_test[:n]
    probs = np.concatenate(
        [np.asarray(plain(x[i : i + EVAL_BATCH], training=False)) for i in range(0, n, EVAL_BATCH)]
    )
    return {"examples": n, **workload.score(data.y_test[:n], probs)}


def _run_matmul(spec: CellSpec, workload, adapter, strategy, hw: Hardware, device_names: list[str]) -> dict:
    """Times the product on the CPU and on each of the adapter's compute devices; checks
    every sum against the exact reference of that device's own operands. A device that
    runs out of memory (the seed shape's product is 4 GB) is recorded as such; the other
    devices' figures stay."""
    targets = adapter.compute_devices(hw)
    shape = spec.matmul_shape
    timed = list(dict.fromkeys(["/CPU:0", *targets]))
    memory.reset_device_peaks(targets)
    per_device, failed = {}, {}
    for device in timed:
        try:
            per_device[device] = _time_product(spec, workload, device, shape)
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is expected; anything else is re-raised
            if type(exc).__name__ != "ResourceExhaustedError":
                raise
            failed[device] = f"ResourceExhaustedError: {str(exc).splitlines()[0][:200]}"
    if "/CPU:0" not in per_device:
        raise RuntimeError(f"matmul: the CPU could not run the {shape} product: {failed.get('/CPU:0')}")
    primary = next((d for d in targets if d in per_device), "/CPU:0")
    cpu_median = per_device["/CPU:0"]["summary"]["median"]
    mismatched = [d for d, r in per_device.items() if r["sum_rel_error"] > SUM_RTOL]
    if mismatched:
        raise RuntimeError(
            f"matmul sums disagree with the float64 reference beyond rtol {SUM_RTOL}: "
            + ", ".join(f"{d} rel. error {per_device[d]['sum_rel_error']:.2e}" for d in mismatched)
        )
    return {
        "matmul": {
            "shape": list(shape),
            "flops_per_byte": workload.intensity(shape),
            "sum_rtol": SUM_RTOL,
            "devices": per_device,
            "failed_devices": failed,
            "speedup_over_cpu": {d: cpu_median / r["summary"]["median"] for d, r in per_device.items()},
            "primary_device": primary,
        },
        "steps": {"samples": per_device[primary]["samples"], "steps_per_sample": 1},
        "step_time": per_device[primary]["summary"],
        "memory": {"peak_rss_bytes": memory.peak_rss_bytes(), "device_peak_bytes": memory.device_peaks(targets)},
    }


def _time_product(spec: CellSpec, workload, device: str, shape) -> dict:
    """One device's timing of the product, its sum against the exact reference of its own
    operands, and (on a GPU) whether TensorFloat-32 was on, with a strict float32 timing."""
    import tensorflow as tf

    a, b = workload.operands(device, shape, spec.seed)
    reference = workload.reference_sum(a, b)
    step = workload.step(device, a, b)
    value = step()  # warm-up: traces and places the function
    samples = time_repeats(step, spec.matmul_repeats)
    summary = stats.summarize(samples)
    found = {
        "samples": samples,
        "summary": summary.as_dict(),
        "gflops": workload.flops(shape) / summary.median / 1e9,
        "sum": value,
        "reference_sum": reference,
        "sum_rel_error": abs(value - reference) / abs(reference),
    }
    if "GPU" in device:
        # Ampere and newer multiply float32 in TensorFloat-32 by default: say so, and time
        # strict float32 too, so that "float32 GFLOP/s" means one thing.
        found["tensor_float_32"] = tf.config.experimental.is_tensor_float_32_execution_enabled()
        found["compute_capability"] = hardware.gpu_details(device).get("compute_capability")
        if found["tensor_float_32"]:
            tf.config.experimental.enable_tensor_float_32_execution(False)
            try:
                strict = workload.step(device, a, b)
                strict()
                found["gflops_strict_float32"] = workload.flops(shape) / stats.percentile(
                    time_repeats(strict, spec.matmul_repeats), 50) / 1e9
            finally:
                tf.config.experimental.enable_tensor_float_32_execution(True)
    del a, b
    return found


# The one dispatch on what a workload is: a training cell or a device timing (matmul).
_RUNNERS = {"training": _run_training, "matmul": _run_matmul}
