"""Harness overhead: the harness's measurement of a cell against a bare TensorFlow loop.

Both are measured in one process, step by step interleaved, on the same model
architecture, data, optimizer, loss and metrics:

* harness: the registered loop (``custom``) under the cell's strategy, timed by the
  harness's :class:`StepClock` exactly as :func:`bench.cell.run_cell` times it;
* bare: a ``GradientTape`` step under ``tf.function`` written with TensorFlow and the
  Keras model only (no strategy, no harness code), timed with ``perf_counter`` around
  the step and the ``float()`` of its loss (the device sync).

Interleaving is forced by this VM's noise: a cell's median moved by up to 2x between
processes, and rounds of 60 steps run back to back in one process differed by up to
±25% (20 pairs: harness/bare ratio 0.79-1.38), which would swamp a 3% effect. So after
each harness step has been recorded, the clock runs and times one bare step (outside
the harness's timed region): both sides sample the same moments. Each round builds
fresh models and traces fresh steps; cold start and warm-up steps are dropped on both
sides. The overhead is the median over rounds of median(harness) / median(bare), minus
1, with a paired bootstrap interval (the same step pairs on both sides, then rounds).

``fit`` is timed by a callback that syncs after every step; a bare ``fit`` has no step
times to compare with. So the second measurement is what that callback costs ``fit``'s
wall time: pairs of back-to-back ``fit`` calls of the same compiled model over the same
data, one with the harness's callback and one without, in alternating order; the
estimate is the median of the pairs' wall-time ratios with a bootstrap interval.
"""

from __future__ import annotations

import time
from typing import Callable

from bench import stats
from bench.config import CellSpec
from bench.errors import UserError
from bench.timing import StepClock

TARGET = 0.03           # the target: the harness adds at most 3% to the median step
DEFAULT_ROUNDS = 6
DEFAULT_STEPS = 150     # steps per round and side (the first 1 + warm-up are dropped)
FIT_PAIRS = 60          # pairs of fit calls, with and without the timing callback
FIT_STEPS = 25          # steps per fit call: short calls pair closely in time


class InterleavedClock(StepClock):
    """The harness's clock; after each recorded harness step it runs and times one bare step."""

    def __init__(self, bare_step: Callable[[], object]) -> None:
        super().__init__()
        self._bare_step = bare_step
        self.bare: list[float] = []

    def stop(self, steps: int = 1) -> None:
        super().stop(steps)
        start = time.perf_counter()
        self._bare_step()
        self.bare.append(time.perf_counter() - start)


def measure(spec: CellSpec, rounds: int = DEFAULT_ROUNDS, fit_pairs: int = FIT_PAIRS) -> dict:
    """Runs ``rounds`` interleaved rounds of ``spec``'s loop and the bare loop, then
    ``fit_pairs`` pairs of timed and untimed ``fit`` calls, here; returns the record."""
    import bench.loops as loops
    import workloads
    from bench.cell import build_model, start_strategy
    from bench.timing import StepTimes
    from strategies import hardware

    if spec.loop != "custom" or spec.strategy != "default":
        raise UserError(f"The overhead benchmark compares the default strategy's custom loop with a bare "
                        f"TensorFlow loop; received {spec.strategy}/{spec.loop}.")
    workload = workloads.get(spec.workload)
    _, strategy = start_strategy(spec, hardware.detect())
    data = workload.load_data(spec.data, spec.seed)
    steps = spec.steps_per_epoch or DEFAULT_STEPS
    config = loops.TrainConfig(epochs=1, steps_per_epoch=steps, global_batch=spec.global_batch,
                               steps_per_execution=1, seed=spec.seed)
    harness, bare = [], []
    for _ in range(rounds):
        bare_step = _bare_step(spec, workload, data)
        bare_step()   # traced before the round, like the harness's first (dropped) step
        clock = InterleavedClock(bare_step)
        loops.get(spec.loop).train(loops.TrainContext(strategy, workload, build_model(spec, workload, data, strategy),
                                                      data, config, clock))
        harness.append(StepTimes.split(clock, spec.warmup_steps).steady)
        bare.append(clock.bare[1 + spec.warmup_steps:])
    record = _record(spec, harness, bare, steps)
    if fit_pairs:
        record["overhead"]["fit"] = _fit_overhead(spec, workload, strategy, data, fit_pairs)
    return record


def _fit_overhead(spec: CellSpec, workload, strategy, data, pairs: int) -> dict:
    """Wall time of ``fit`` with the harness's per-step timing callback over without it."""
    import bench.loops as loops
    from bench.loops.base import compile_model, train_dataset
    from bench.loops.fit import timing_callback
    from bench.cell import build_model

    config = loops.TrainConfig(epochs=1, steps_per_epoch=FIT_STEPS, global_batch=spec.global_batch,
                               steps_per_execution=1, seed=spec.seed)
    ctx = loops.TrainContext(strategy, workload, build_model(spec, workload, data, strategy), data, config, StepClock())
    compile_model(ctx)
    dataset = train_dataset(ctx)

    def wall(timed: bool) -> float:
        callbacks = [timing_callback(StepClock())] if timed else []
        start = time.perf_counter()
        ctx.model.fit(dataset, epochs=1, steps_per_epoch=FIT_STEPS, callbacks=callbacks, shuffle=False, verbose=0)
        return time.perf_counter() - start

    wall(True), wall(False)   # trace and warm both paths
    ratios = []
    for k in range(pairs):
        first, second = (True, False) if k % 2 == 0 else (False, True)
        times = {first: wall(first), second: wall(second)}
        ratios.append(times[True] / times[False])
    ratio = stats.percentile(ratios, 50)
    lo, hi = stats.bootstrap_median_ci(ratios)
    return {"pairs": pairs, "steps_per_call": FIT_STEPS, "ratios": ratios, "ratio": ratio, "ratio_ci": [lo, hi],
            "added": ratio - 1, "target": TARGET, "within_target": ratio - 1 <= TARGET}


def _bare_step(spec: CellSpec, workload, data) -> Callable[[], float]:
    """One training step of the same model, written with nothing but TensorFlow and Keras layers."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(spec.seed)
    model = workload.build_model(data.vocab_size)
    optimizer, loss_fn, metrics = workload.optimizer(), workload.loss(), workload.metrics()
    ds = tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
    ds = ds.shuffle(len(data.y_train), seed=spec.seed, reshuffle_each_iteration=True)
    iterator = iter(ds.batch(spec.global_batch, drop_remainder=True).repeat().prefetch(tf.data.AUTOTUNE))

    @tf.function
    def step(iterator):
        x, y = next(iterator)
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            loss = loss_fn(y, pred)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        for metric in metrics:
            metric.update_state(y, pred)
        return loss

    return lambda: float(step(iterator))   # float() syncs the device


def _record(spec: CellSpec, harness: list[list[float]], bare: list[list[float]], steps: int) -> dict:
    pooled_h = [x for r in harness for x in r]
    pooled_b = [x for r in bare for x in r]
    ratio = stats.paired_ratio(bare, harness)
    lo, hi = stats.paired_bootstrap_ratio_ci(bare, harness)
    return {
        "cell": f"{spec.id}-overhead",
        "status": "ok",
        "config": spec.to_dict(),
        "overhead": {
            "rounds": len(harness),
            "steps_per_round": steps,
            "harness": {"median": stats.percentile(pooled_h, 50), "round_medians": [stats.percentile(r, 50) for r in harness],
                        "samples": harness},
            "bare": {"median": stats.percentile(pooled_b, 50), "round_medians": [stats.percentile(r, 50) for r in bare],
                     "samples": bare},
            "ratio": ratio,
            "ratio_ci": [lo, hi],
            "added": ratio - 1,
            "target": TARGET,
            "within_target": ratio - 1 <= TARGET,
            "interval_within_target": hi - 1 <= TARGET,
            "p_value": stats.mann_whitney_p(pooled_h, pooled_b),
        },
    }
