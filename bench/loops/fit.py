"""Keras ``fit``, timed per step (or per execution) by a callback that syncs the device."""

from __future__ import annotations

import time

from distbench.core import keras_flavour, stats
from distbench.core.config import TIMING_COST_CALL_S
from distbench.core.errors import UserError
from distbench.core.fit_calls import calls_problem, rounding_problem, steady_before_evaluation
from distbench.loops.base import (
    LOOPS,
    LoopResult,
    TrainContext,
    TrainingLoop,
    compile_model,
    coordinated,
    keeping_fit_iterator,
    scheduled_unit,
    train_dataset,
    train_metric,
)
from distbench.trackers import input_wait
from distbench.trackers.timing import StepClock

# The timing callback's cost: each fit call runs about COST_CALL_S of steps (within bounds).
COST_CALL_S = TIMING_COST_CALL_S   # a timing-cost call's length (the cell's deadline is checked against it)
COST_MIN_STEPS, COST_MAX_STEPS = 20, 2000

SPE_NOTE = (
    "steps_per_execution forced from {asked} to 1: Keras 3 fit fails with steps_per_execution > 1 "
    "under a multi-replica MirroredStrategy (keras-team/keras#19246)"
)


def spe_unsupported(strategy) -> bool:
    """Whether ``fit`` must run one step per execution under ``strategy``: a MirroredStrategy
    (or MultiWorkerMirrored) with several replicas (keras-team/keras#19246). TPUStrategy
    is not affected, and on a TPU one step per execution leaves the host's overhead in
    every step."""
    return "Mirrored" in type(strategy).__name__ and int(strategy.num_replicas_in_sync) > 1


def timing_callback(clock: StepClock):
    keras = keras_flavour.api()

    class StepTimer(keras.callbacks.Callback):
        """Starts the clock at batch begin; stops it once the step's loss is on the host.

        Not ``async_safe``: Keras then dispatches batch-end synchronously with the logs
        converted to Python numbers, which is the device sync that ends the timed step.
        With steps_per_execution = k the hooks fire once per k steps.
        """

        def on_train_batch_begin(self, batch, logs=None):
            self._first = batch
            clock.start()

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # already a Python float; keeps the sync explicit
            clock.stop(steps=batch - self._first + 1)

    return StepTimer()


def training_span():
    """A callback that measures ``fit``'s training from its first step to the end of its
    last epoch (whose metrics Keras brings to the host): without ``fit``'s own set-up, its
    input iterator's creation and its tear-down (now skipped: :func:`keeping_fit_iterator`),
    which took 0.1 to 0.5 s a call here and varied from call to call (run 0069's records).
    No batch-end hook, so Keras's dispatch is as it would be without it (Keras 3 dispatches
    batch ends asynchronously only when no callback has one of its own)."""
    keras = keras_flavour.api()

    class TrainingSpan(keras.callbacks.Callback):
        seconds: float = float("nan")
        _start: float | None = None

        def on_train_batch_begin(self, batch, logs=None):
            if self._start is None:
                self._start = time.perf_counter()

        def on_train_end(self, logs=None):
            self.seconds = time.perf_counter() - self._start

    return TrainingSpan()


def unit_timer(clock: StepClock, steps: int):
    """Times each epoch as one sample of ``steps`` steps: under a parameter-server strategy
    ``fit`` refuses batch-level callbacks, and ends each epoch with the coordinator's join
    (every scheduled step done), which makes the epoch end the unit's sync point."""
    keras = keras_flavour.api()

    class UnitTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            clock.start()

        def on_epoch_end(self, epoch, logs=None):
            clock.stop(steps=steps)

    return UnitTimer()


def stopping_callback(ctx: TrainContext):
    """Asks ``ctx.step_done()`` after each timed unit (after the timer's sync) and stops
    ``fit`` when it says so; Keras 3 checks ``stop_training`` after every batch."""
    keras = keras_flavour.api()

    class StopWhenDone(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if ctx.step_done():
                self.model.stop_training = True

    return StopWhenDone()


def cost_steps(strategy, durations: list[float]) -> int:
    """The steps of each ``fit`` call of the timing-cost pairs: about :data:`COST_CALL_S` at
    the cell's median step (the first step, its trace, left out), within bounds. Under a
    multi-worker strategy every worker must run the same steps (their collectives pair
    up), and each has its own median: there, :data:`COST_MIN_STEPS` on every worker."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return COST_MIN_STEPS
    step_s = stats.percentile(durations[1:], 50) if len(durations) > 1 else None
    return min(COST_MAX_STEPS, max(COST_MIN_STEPS, round(COST_CALL_S / step_s) if step_s else 0))


def _fit(model, data, callbacks: list, **kwargs):
    """``model.fit`` without output, keeping its input iterator (:func:`keeping_fit_iterator`):
    every ``fit`` call of this loop goes through here."""
    return model.fit(data, callbacks=[keeping_fit_iterator(), *callbacks], verbose=0, **kwargs)


@LOOPS.register
class FitLoop(TrainingLoop):
    name = "fit"
    summary = "keras Model.fit with a per-step timing callback"

    def train(self, ctx: TrainContext) -> LoopResult:
        if coordinated(ctx.strategy):
            return self._scheduled(ctx)
        cfg = ctx.config
        spe, notes = cfg.steps_per_execution, []
        if spe > 1 and spe_unsupported(ctx.strategy):
            notes.append(SPE_NOTE.format(asked=spe))
            spe = 1
        tracker = ctx.after_step   # a time-to-target cell's: checked in its calls as made (the parent: one replica's)
        problem = calls_problem(cfg.epochs, cfg.steps_per_epoch, cfg.warmup_steps, spe) or (
            rounding_problem(cfg.steps_per_epoch, spe) if keras_flavour.current() == "keras3" else "") or (
            steady_before_evaluation(tracker.eval_every, tracker.max_steps, cfg.warmup_steps, spe)
            if tracker is not None and spe > 1 else "")
        if problem:   # refused before training, not after it for want of a steady call or with more steps
            raise UserError(problem)
        compile_model(ctx, spe)
        history = _fit(
            ctx.model,
            train_dataset(ctx),
            [self.timer(ctx.clock)] + ([stopping_callback(ctx)] if ctx.after_step else []),
            epochs=cfg.epochs,
            steps_per_epoch=cfg.steps_per_epoch,
            shuffle=False,  # the dataset is already shuffled (seeded)
        )
        tracked = train_metric([k for k in history.history if k != "loss"], ctx.workload.guard())
        return LoopResult(
            train_accuracy=float(history.history[tracked][-1]),
            train_loss=float(history.history["loss"][-1]),
            train_metric=tracked,
            # What Keras compiled with, read back (not the setting asked for).
            settings={"steps_per_execution": spe, "jit_compile": bool(ctx.model.jit_compile)},
            notes=notes,
        )

    def _scheduled(self, ctx: TrainContext) -> LoopResult:
        """``fit`` under a parameter-server strategy (tf-keras): the training set through a
        ``DatasetCreator`` (one copy per worker), the cell's steps as epochs of one scheduled
        unit each, each epoch timed (:func:`unit_timer`)."""
        cfg = ctx.config
        compile_model(ctx)
        unit = scheduled_unit(cfg.steps_per_epoch)
        keras = keras_flavour.api()
        data = keras.utils.experimental.DatasetCreator(lambda _: train_dataset(ctx, per_worker=True))
        history = _fit(ctx.model, data, [unit_timer(ctx.clock, unit)], epochs=cfg.epochs * cfg.steps_per_epoch // unit,
                       steps_per_epoch=unit)
        tracked = train_metric([k for k in history.history if k != "loss"], ctx.workload.guard())
        return LoopResult(
            train_accuracy=float(history.history[tracked][-1]),   # over the last unit
            train_loss=float(history.history["loss"][-1]),
            train_metric=tracked,
            settings={"steps_per_execution": 1, "jit_compile": bool(ctx.model.jit_compile), "scheduled": True,
                      "steps_per_sample": unit},
            notes=[f"fit ran the cell's steps as epochs of {unit} scheduled steps (its timing callback is "
                   "epoch-level under ParameterServerStrategy); training accuracy is the last unit's"],
        )

    def input_wait(self, ctx: TrainContext, steady: int) -> dict:
        """Keras runs ``get_next`` inside its step function: the same pipeline timed alone,
        an upper bound of the wait (:mod:`distbench.trackers.input_wait`)."""
        if coordinated(ctx.strategy):
            return input_wait.not_measured()
        step_s = stats.percentile(ctx.clock.durations[-steady:], 50)
        return input_wait.bounded(input_wait.probe(train_dataset(ctx)), step_s)

    def timing_cost(self, ctx: TrainContext, pairs: int, steps: int | None = None) -> dict | None:
        if coordinated(ctx.strategy):
            return None   # its timer is epoch-level there: no per-step sync to cost
        return self._timing_cost(ctx, pairs, steps)

    def timer(self, clock: StepClock):
        """The per-step timing callback (tests override it to inject a slow one)."""
        return timing_callback(clock)

    def _timing_cost(self, ctx: TrainContext, pairs: int, steps: int | None = None) -> dict:
        """What the timing callback costs ``fit``: on a GPU its per-step sync stops Keras from
        dispatching the next step while the device works, which untimed ``fit`` does.

        ``pairs`` pairs of back-to-back ``fit`` calls of the trained, compiled model over the
        same batches, one with the callback and one without, in alternating order (one
        process, one model: the pairs are its units). Each call runs ``steps`` steps (by
        default about :data:`COST_CALL_S` at the cell's median step, whole executions) and
        is timed by :func:`training_span`. The median of the pairs' timed/untimed ratios,
        with its distribution-free interval, and the untimed call's wall time per step:
        what a user's untimed ``fit`` takes, host work between steps included, which the
        cell's step times (batch begin to batch end) leave out.
        """
        steps = steps or cost_steps(ctx.strategy, ctx.clock.durations)
        spe = keras_flavour.steps_per_execution(ctx.model)
        steps = -(-steps // spe) * spe
        dataset = train_dataset(ctx, shuffle=False)   # the same batches on both sides, no buffer to fill

        def wall(timed: bool) -> float:
            span = training_span()
            timer = [self.timer(StepClock())] if timed else []
            _fit(ctx.model, dataset, [span] + timer, epochs=1, steps_per_epoch=steps, shuffle=False)
            return span.seconds

        walls = []   # no warm-up calls: the step is traced, and each call's own set-up is outside its span
        for k in range(pairs):
            first, second = (True, False) if k % 2 == 0 else (False, True)
            times = {first: wall(first), second: wall(second)}
            walls.append((times[True], times[False]))
        ratios = [t / u for t, u in walls]
        ratio = stats.percentile(ratios, 50)
        low, high, coverage = stats.median_order_interval(ratios)
        return {"pairs": pairs, "steps_per_call": steps, "walls": walls, "ratio": ratio, "ratio_ci": [low, high],
                "coverage": coverage, "added": ratio - 1,
                "untimed_step_s": stats.percentile([u for _, u in walls], 50) / steps}
