"""Keras ``fit``, timed per step (or per execution) by a callback that syncs the device."""

from __future__ import annotations

from bench.loops.base import LOOPS, LoopResult, TrainContext, TrainingLoop, compile_model, train_dataset
from bench.timing import StepClock

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
    import keras

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


def stopping_callback(ctx: TrainContext):
    """Asks ``ctx.step_done()`` after each timed unit (after the timer's sync) and stops
    ``fit`` when it says so; Keras 3 checks ``stop_training`` after every batch."""
    import keras

    class StopWhenDone(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if ctx.step_done():
                self.model.stop_training = True

    return StopWhenDone()


@LOOPS.register
class FitLoop(TrainingLoop):
    name = "fit"
    summary = "keras Model.fit with a per-step timing callback"

    def train(self, ctx: TrainContext) -> LoopResult:
        cfg = ctx.config
        spe, notes = cfg.steps_per_execution, []
        if spe > 1 and spe_unsupported(ctx.strategy):
            notes.append(SPE_NOTE.format(asked=spe))
            spe = 1
        compile_model(ctx, spe)
        history = ctx.model.fit(
            train_dataset(ctx),
            epochs=cfg.epochs,
            steps_per_epoch=cfg.steps_per_epoch,
            callbacks=[timing_callback(ctx.clock)] + ([stopping_callback(ctx)] if ctx.after_step else []),
            shuffle=False,  # the dataset is already shuffled (seeded)
            verbose=0,
        )
        return LoopResult(
            train_accuracy=float(history.history["accuracy"][-1]),
            train_loss=float(history.history["loss"][-1]),
            settings={"steps_per_execution": spe, "jit_compile": cfg.jit_compile},
            notes=notes,
        )
