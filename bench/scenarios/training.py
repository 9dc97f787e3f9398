"""Child side: the training scenario: the workload's model under the cell's strategy and
loop, timed step by step, then evaluated (after :func:`distbench.scenarios.cell.run_cell`'s set-up)."""

from __future__ import annotations

import hashlib
import math
import time

import distbench.loops as loops
import numpy as np
from distbench.core import keras_flavour, stats
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.core.targets import parse
from distbench.loops.base import PER_WORKER_COPY, PREFETCH_OFF, SHARDING, coordinated, own_train_step
from distbench.scenarios.cell import build_model
from distbench.scenarios.definition import workload_code
from distbench.strategies.hardware import Hardware
from distbench.trackers import cluster_faults, disturbance, flops, lockstep, memory
from distbench.trackers.target import Tracker
from distbench.trackers.timing import StepTimes


# tf-keras refuses the mixed_float16 policy under a strategy its loss scaling does not support
# (ParameterServerStrategy), at the model's first layer: in fit as in any loop.
MIXED_REFUSED = "Mixed precision is not supported with the tf.distribute.Strategy"


def _model(spec: CellSpec, workload, data, strategy, loop) -> tuple[object, str | None]:
    """The cell's model, or why ``loop`` cannot train it here: the model's own train_step
    (the custom loop), or tf-keras refusing its mixed_float16 policy under this strategy (a
    library's limit, as Keras 3's fit under parameter_server: a skip, not a crash)."""
    try:
        model = build_model(spec, workload, data, strategy)
    except ValueError as exc:
        if MIXED_REFUSED not in str(exc):
            raise
        return None, (f"{spec.strategy}: tf-keras's loss scaling does not support {type(strategy).__name__}, and "
                      "it refuses a mixed_float16 model under it; Keras 3 measures it (--keras keras3)")
    return model, own_train_step(loop, model)


def run(spec: CellSpec, workload, adapter, strategy, hw: Hardware, device_names: list[str]) -> dict:
    replicas = int(strategy.num_replicas_in_sync)
    same_cell_on_every_worker(spec, strategy)
    global_batch = _global_batch(spec, replicas)
    phases = _Phases()
    data = same_data_on_every_worker(workload.load(spec.data, spec.seed), strategy)
    phases.end("data_s")
    config = _train_config(spec, data, global_batch)
    memory.reset_device_peaks(device_names)
    loop = loops.get(spec.loop)
    model, cannot = _model(spec, workload, data, strategy, loop)
    if cannot:
        return {"status": "skipped", "reason": cannot, "lasting": True}   # the same in every repeat (a probe's may not be)
    plain = workload.new_model(data)   # evaluation's strategy-free copy
    phases.end("build_s")
    clock = lockstep.clock()   # in lockstep with a partner process when the parent asked (distbench.session.interleave)
    tracker = _tracker(spec, workload, plain, model, data, clock)
    meter = disturbance.Meter()
    faults = _faults(strategy, clock)
    if tracker:
        tracker.start()
    ctx = loops.TrainContext(strategy, workload, model, data, config, clock, tracker)
    outcome = loop.train(ctx)
    disturbed = lockstep.disturbance(meter.stop(), clock)
    lockstep.finish(clock)
    phases.end("train_s")
    times = _steady(spec, clock, tracker)
    _refuse_diverged(f"the last epoch's mean loss is {outcome.train_loss}",
                     outcome.train_loss is not None and not math.isfinite(outcome.train_loss))
    waited = loop.input_wait(ctx, len(times.steady))
    peaks = memory.device_peaks(device_names)   # before evaluation places another model
    compute = _compute(workload, plain, data, config.global_batch)
    phases.end("flops_s")
    # A target cell's last evaluation is its test result (the model has not changed since).
    test = tracker.last if tracker else _evaluate(workload, plain, model, data, spec.eval_examples)
    _refuse_diverged(*_diverged_after(plain, test))
    phases.end("evaluate_s")
    cost = _timing_cost(spec, loop, ctx)
    phases.end("timing_cost_s")
    if faults:
        faults.check()
    record = _training_record(spec, workload, data, config, replicas, clock, times, outcome, test, peaks)
    record["input"] = {**waited, "prefetch": spec.prefetch, "batched_by": "distbench", "sharding": PER_WORKER_COPY if coordinated(strategy) else SHARDING,
                       **({"prefetch_off": PREFETCH_OFF} if spec.prefetch == "off" else {})}
    if cost:
        record["loop"]["timing_cost"] = cost
    if tracker:
        record["target"] = tracker.record()
    return {**record, "compute": compute, "phases": phases.seconds, "disturbance": disturbed}


# The settings every worker of a multi-worker cell must share: one given another batch by its own
# flag or matrix file trained 4 examples a step where the chief counted 8, and saved its
# throughput as the cluster's (exit 0); another number of steps failed in TensorFlow's words.
SHARED = ("workload", "loop", "keras", "global_batch", "scaling", "epochs", "steps_per_epoch", "warmup_steps",
          "steps_per_execution", "jit_compile", "prefetch", "seed", "init_seed", "timing_cost_pairs", "eval_examples",
          "target", "eval_every", "max_steps")


def same_cell_on_every_worker(spec: CellSpec, strategy) -> None:
    """UserError on every worker of a MultiWorkerMirroredStrategy cell whose workers were
    given other settings, naming them (the cluster's first collective, before the model's)."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    differ = _differing(strategy, [(name, getattr(spec, name)) for name in SHARED])
    if differ:
        raise UserError(f"the cluster's workers were given other settings ({', '.join(differ)}; this worker's: "
                        + ", ".join(f"{name} {getattr(spec, name)}" for name in differ) + "): each worker runs the "
                        "same `distbench run` options and matrix file, or its steps are not the cluster's.")


def same_data_on_every_worker(data, strategy):
    """``data``; UserError on every worker of a MultiWorkerMirroredStrategy cell whose workers
    read other examples (by their fingerprint, wherever each read them from): their gradients
    were averaged over two datasets, and the run stored as the chief's data (exit 0)."""
    import tensorflow as tf

    fingerprint = data.fingerprint() if hasattr(data, "fingerprint") else None
    if fingerprint is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return data   # a pipeline's examples are not read twice to hash them
    if _differing(strategy, [("data", fingerprint)]):
        raise UserError(f"the cluster's workers read other examples (this worker's: {data.source}, fingerprint "
                        f"{fingerprint[:12]}): each worker reads the same data, wherever it is mounted, or the "
                        "cluster trains on a mix of them.")
    return data


def _differing(strategy, items: list[tuple[str, object]]) -> list[str]:
    """The names of ``items`` whose value differs on some worker: each value's hash summed over
    the replicas (one collective) equals the replicas times this worker's only when every
    worker's is this one's."""
    import tensorflow as tf

    mine = [float(int(hashlib.sha256(repr(value).encode()).hexdigest()[:5], 16)) for _, value in items]
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(mine, tf.float64)), axis=None)
    return [name for (name, _), own, summed in zip(items, mine, total.numpy())
            if round(summed) != round(own * strategy.num_replicas_in_sync)]


def _faults(strategy, clock) -> cluster_faults.Faults | None:
    """What a parameter-server coordinator recovers from, heard as each step ends (its
    listener); no other strategy's logger is opened."""
    if not coordinated(strategy):
        return None
    faults = cluster_faults.listen()
    clock.checks.append(lambda: faults.check_heard(clock))
    return faults


def _refuse_diverged(what: str, diverged: bool) -> None:
    if diverged:
        raise UserError(f"Training diverged: {what} (NaN or infinite inputs or labels, or a learning rate too high); "
                        "its steps are not a measurement of this model.")


def _diverged_after(plain, test: dict) -> tuple[str, bool]:
    """What says the trained model diverged, when something does: a weight that is NaN or
    infinite (a model whose loss Keras still reports as finite: 2.30 = ln 10 for ten classes
    once every output is NaN), or a test metric that is (stored as null, it read as no loss)."""
    weights = plain.get_weights()
    broken = sum(not np.isfinite(w).all() for w in weights)
    if broken:
        return (f"{broken} of the model's {len(weights)} weight arrays {'holds' if broken == 1 else 'hold'} "
                "NaN or infinite values"), True
    bad = {k: v for k, v in test.items() if isinstance(v, (float, np.floating)) and not math.isfinite(v)}
    return f"the test {', '.join(f'{k} is {v}' for k, v in bad.items())}", bool(bad)


def _steady(spec: CellSpec, clock, tracker=None) -> StepTimes:
    """The clock's steps split at the warm-up; UserError when no steady step is left (a
    target cell's ``tracker`` says whether its target or its --max-steps stopped it)."""
    times = StepTimes.split(clock, spec.warmup_steps)
    if not times.steady:
        units = (f" in units of {times.steps_per_sample} scheduled steps, each timed whole: the cold start is one "
                 f"unit and the warm-up rounds up to whole units" if times.steps_per_sample > 1 else "")
        # A target cell stops where its target is reached: more steps cannot help it.
        fewer = "fewer warm-up steps" + (", a smaller --steps-per-execution" if times.steps_per_sample > 1 else "")
        advice = (f"the target was reached before one: give {fewer} or a target further away"
                  if tracker and tracker.reached else f"give a larger --max-steps or {fewer}" if tracker
                  else "run more steps or fewer warm-up steps")
        raise UserError(
            f"No steady-state steps left after the cold start and {spec.warmup_steps} warm-up "
            f"steps ({clock.total_steps} steps ran{units}); {advice}."
        )
    return times


def _train_config(spec: CellSpec, data, global_batch: int) -> loops.TrainConfig:
    steps_per_epoch = steps_per_epoch_of(spec, data, global_batch)
    # A time-to-target cell trains up to its step budget; the target stops it earlier.
    epochs = -(-spec.max_steps // steps_per_epoch) if spec.is_target else spec.epochs
    return loops.TrainConfig(
        epochs=epochs, steps_per_epoch=steps_per_epoch, global_batch=global_batch,
        steps_per_execution=spec.steps_per_execution, seed=spec.training_seed,
        jit_compile=spec.jit_compile, prefetch=spec.prefetch, warmup_steps=spec.warmup_steps,
    )


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
    return Tracker(parse(spec.target),
                          lambda: _evaluate(workload, plain, model, data, spec.eval_examples),
                          spec.eval_every, spec.max_steps, clock)


def _compute(workload, plain, data, global_batch: int) -> dict:
    """FLOPs of one training step of the global batch (:mod:`distbench.trackers.flops`); the run's
    measured peak is added by the parent (:func:`distbench.scenarios.peak.apply`)."""
    import tensorflow as tf

    x, y = tf.nest.map_structure(lambda s: tf.TensorSpec((global_batch, *s.shape), s.dtype), data.element_spec())
    own = keras_flavour.own_train_step(plain)   # fit and train_on_batch run it (the custom loop skips such a model)
    if own:
        counted = workload.new_model(data)
        counted.compile(optimizer=workload.optimizer(), loss=workload.loss(), metrics=workload.metrics())
        try:
            count = flops.own_step_flops(counted, x, y)
            return {"flops_per_step": count["per_step"], "flops": count}
        except Exception as exc:  # noqa: BLE001 - a step that cannot be traced alone (it wants sample weights)
            failed = type(exc).__name__
    count = flops.train_step_flops(plain, workload.training_loss(), workload.optimizer(), x, y,
                                   workload_code(type(workload)))
    if own:
        count = {**count, "source": f"{count['source']}; the model's own train_step could not be traced alone "
                                    f"({failed}): the standard step's"}
    return {"flops_per_step": count["per_step"], "flops": count}


def steps_per_epoch_of(spec: CellSpec, data, global_batch: int) -> int:
    """The cell's steps per epoch: given, or one pass over the training set (UserError for a
    dataset of unknown length, where an epoch is not defined)."""
    examples = data.train_examples
    if examples is not None and examples < global_batch:   # not one whole batch: every loop fails its own way
        raise UserError(f"{spec.workload}: its training data has {examples} examples, fewer than one global batch of "
                        f"{global_batch}; give --global-batch {examples} or less, or more examples.")
    if spec.steps_per_epoch:
        return spec.steps_per_epoch
    if examples is None:
        raise UserError(f"{spec.workload}: its training dataset has no known length, so an epoch is not defined; "
                        "give --steps-per-epoch N (or steps_per_epoch in the matrix file).")
    return examples // global_batch


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
        # The majority class's share of a user's array labels (text data says its own): the guard's
        # chance, for a classifier (one that computes an accuracy); a regression's whole-number targets have none.
        "data": {"majority_class_share": stats.majority_share(getattr(data, "y_test", None))
                 if any("accuracy" in name for name in test) else None, **data.describe()},
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
                     "guard_metric": workload.guard(), "guard_direction": workload.direction(workload.guard()),
                     **({} if outcome.train_metric == "accuracy" else {"train_metric": outcome.train_metric})},
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
    plain.set_weights(model.get_weights())
    return workload.evaluate(plain, data, limit)
