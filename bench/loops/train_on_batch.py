"""``Model.train_on_batch``, one call per step, as in the published recipe.

Two traps, both handled here:

* Under a multi-replica strategy a plain NumPy batch is *not* split: Keras passes the
  same tensor to every replica, so each trains on the whole batch. We feed per-replica
  values from ``experimental_distribute_dataset`` so the global batch is split.
* Keras's first-call symbolic build reads ``.shape`` of the batch, which per-replica
  values lack; one ``test_on_batch`` on a plain per-replica-sized batch builds the
  model, loss and metrics first (it reads weights, never changes them).

``train_on_batch`` resets the metrics on every call, so epoch accuracy is accumulated
here, weighted by batch size.
"""

from __future__ import annotations

from distbench.loops.base import (
    LOOPS,
    LR_HALVING_EPOCH,
    LoopResult,
    TrainContext,
    TrainingLoop,
    compile_model,
    train_dataset,
)


@LOOPS.register
class TrainOnBatchLoop(TrainingLoop):
    name = "train_on_batch"
    summary = "keras Model.train_on_batch per step, global batch split across replicas"

    def train(self, ctx: TrainContext) -> LoopResult:
        import keras

        cfg = ctx.config
        compile_model(ctx)
        batches = self._batches(ctx)
        halved_at = None
        for epoch in ctx.epochs():
            if cfg.epochs >= LR_HALVING_EPOCH and epoch + 1 == LR_HALVING_EPOCH:
                lr = ctx.model.optimizer.learning_rate
                lr.assign(lr * 0.5)
                halved_at = epoch + 1
            correct = loss_sum = 0.0
            steps = 0
            for _ in ctx.steps():
                ctx.clock.start()
                x, y = next(batches)
                logs = ctx.model.train_on_batch(x, y, return_dict=True)  # Python floats: synced
                ctx.clock.stop()
                correct += logs["accuracy"] * cfg.global_batch
                loss_sum += logs["loss"]
                steps += 1
        return LoopResult(
            train_accuracy=correct / (steps * cfg.global_batch),
            train_loss=loss_sum / steps,
            settings={
                "lr_halved_at_epoch": halved_at,
                "final_learning_rate": float(keras.ops.convert_to_numpy(ctx.model.optimizer.learning_rate)),
                "per_replica_feed": ctx.replicas > 1,
                "jit_compile": bool(ctx.model.jit_compile),   # what Keras compiled with, read back
            },
        )

    @staticmethod
    def _batches(ctx: TrainContext):
        ds = train_dataset(ctx)
        if ctx.replicas == 1:
            return iter(ds)
        per_replica = ctx.config.global_batch // ctx.replicas
        data = ctx.data
        ctx.model.test_on_batch(data.x_train[:per_replica], data.y_train[:per_replica])
        return iter(ctx.strategy.experimental_distribute_dataset(ds))
