"""Child side: a bare TensorFlow training loop, the harness-overhead benchmark's baseline.

Written as a user would write it without distbench: no strategy, no step clock, no loop
registry, no harness record-keeping; a ``GradientTape`` step under ``tf.function`` fed by
a ``tf.data`` iterator, timed with ``perf_counter`` around the step and the ``float()``
of its loss (the device sync). What it shares with the harness is the workload's
definition: its model, data, optimizer, loss and metrics (``metrics="workload"``; or
``"accuracy"`` alone, to measure what the workload's extra metrics cost).

The parent runs it in its own process, paired and interleaved with processes of the
harness's own cell (:mod:`distbench.session.overhead`).
"""

from __future__ import annotations

import time

from distbench import workloads
from distbench.core import keras_flavour, stats
from distbench.loops.base import prefetched
from distbench.strategies import devices
from distbench.trackers.lockstep import turns

METRICS = ("workload", "accuracy")


def measure(spec, metrics: str = "workload") -> dict:
    """Trains ``spec``'s workload with a bare loop here; a record with the same step
    statistics a cell's record has (cold start and warm-up steps dropped)."""
    import tensorflow as tf

    keras = keras_flavour.api()
    workload = workloads.get(spec.workload)
    data = workload.load(spec.data, spec.seed)
    keras.utils.set_random_seed(spec.training_seed)
    model = workload.new_model(data)
    optimizer, loss_fn = workload.optimizer(), workload.training_loss()   # a function's: ranks aligned
    tracked = [m for m in workload.metrics() if metrics == "workload" or m.name == "accuracy"]
    ds = data.dataset("train")
    if data.kind == "arrays":
        ds = ds.shuffle(data.train_examples, seed=spec.training_seed, reshuffle_each_iteration=True)
    # The cell's prefetch, as a user would write it (auto: tf.data.AUTOTUNE); its thread pools
    # were set before the workload's modules loaded (distbench.scenarios.tasks).
    iterator = iter(prefetched(ds.batch(spec.global_batch, drop_remainder=True).repeat(), spec.prefetch))

    @tf.function
    def step(iterator):
        x, y = next(iterator)
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            loss = tf.reduce_mean(loss_fn(y, pred))   # a function's one value per example, averaged as compile does
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        for metric in tracked:
            metric.update_state(y, pred)
        return loss

    mine, times = turns(), []   # taking turns with a partner process, outside the timed region
    for _ in range(spec.epochs * (spec.steps_per_epoch or (data.train_examples or 0) // spec.global_batch)):
        if mine:
            mine.before()
        start = time.perf_counter()
        float(step(iterator))   # the device sync
        times.append(time.perf_counter() - start)
        if mine:
            mine.after()
    if mine:
        mine.end()
    steady = times[1 + spec.warmup_steps:]
    return {"cell": f"{spec.id}-bare", "status": "ok", "config": spec.to_dict(), "bare": {"metrics": metrics},
            "steps": {"samples": steady, "cold_start_s": times[0], "steps_per_sample": 1},
            "step_time": stats.summarize(steady).as_dict(),
            "threads": devices.threads()}
