"""``Model.train_on_batch``, one call per step, as in the published recipe.

Two traps, both handled here:

* Under a multi-replica strategy Keras 3 does *not* split a plain batch: it passes the
  same tensor to every replica, so each trains on the whole batch. We feed per-replica
  values from ``experimental_distribute_dataset`` so the global batch is split.
* Keras 3's first-call symbolic build reads ``.shape`` of the batch, which per-replica
  values lack; one ``test_on_batch`` on a plain per-replica-sized batch builds the
  model, loss and metrics first (it reads weights, never changes them).

tf-keras (Keras 2) is the other way round: it splits a plain global batch across the
replicas itself (16 of 32 examples each on two, seen here) and refuses per-replica
values (``'PerReplica' object has no attribute 'shape'``), so its cells feed plain batches.

``train_on_batch`` resets the metrics on every call, so epoch accuracy is accumulated
here, weighted by batch size.
"""

from __future__ import annotations

import time

from distbench.core import keras_flavour
from distbench.loops.base import (
    LOOPS,
    LR_HALVING_EPOCH,
    LoopResult,
    TrainContext,
    TrainingLoop,
    compile_model,
    keep,
    train_dataset,
    train_metric,
)


@LOOPS.register
class TrainOnBatchLoop(TrainingLoop):
    name = "train_on_batch"
    summary = "keras Model.train_on_batch per step, global batch split across replicas"

    def train(self, ctx: TrainContext) -> LoopResult:
        cfg = ctx.config
        compile_model(ctx)
        if keras_flavour.current() == "tf_keras":
            # tf-keras's "auto" sums the replicas' logs off TPU, and across workers that is a
            # collective SUM of values each already holds in full: a multi_worker cell's
            # train accuracy read 1.825 on 4 workers. "first": its own choice for values
            # the strategy has synchronized (metrics); the training is the same.
            ctx.model.distribute_reduction_method = "first"
        batches = self._batches(ctx)
        tracked, halved_at = None, None
        for epoch in ctx.epochs():
            halving = getattr(ctx.workload, "lr_halving_epoch", LR_HALVING_EPOCH)   # the text recipe's; None: never
            if halving and cfg.epochs >= halving and epoch + 1 == halving:
                lr = ctx.model.optimizer.learning_rate
                lr.assign(lr * 0.5)
                halved_at = epoch + 1
            correct = loss_sum = 0.0
            steps = 0
            for _ in ctx.steps():
                ctx.clock.start()
                began = time.perf_counter()
                x, y = next(batches)
                waited = time.perf_counter() - began
                logs = ctx.model.train_on_batch(x, y, return_dict=True)  # Python floats: synced
                ctx.clock.stop()
                ctx.clock.waited(waited)
                tracked = tracked or train_metric([k for k in logs if k != "loss"], ctx.workload.guard())
                correct += logs[tracked] * cfg.global_batch
                loss_sum += logs["loss"]
                steps += 1
        return LoopResult(
            train_accuracy=correct / (steps * cfg.global_batch),
            train_loss=loss_sum / steps,
            train_metric=tracked or "accuracy",
            settings={
                "lr_halved_at_epoch": halved_at,
                "final_learning_rate": keras_flavour.to_float(ctx.model.optimizer.learning_rate),
                "per_replica_feed": self._per_replica(ctx),
                "jit_compile": bool(ctx.model.jit_compile),   # what Keras compiled with, read back
            },
        )

    @staticmethod
    def _per_replica(ctx: TrainContext) -> bool:
        """Whether the loop feeds per-replica values (Keras 3 with several replicas)."""
        return ctx.replicas > 1 and keras_flavour.current() == "keras3"

    def _batches(self, ctx: TrainContext):
        ds = train_dataset(ctx)
        if not self._per_replica(ctx):
            return keep(iter(ds))
        per_replica = ctx.config.global_batch // ctx.replicas
        ctx.model.test_on_batch(*ctx.data.first(per_replica))
        return keep(iter(ctx.strategy.experimental_distribute_dataset(ds)))
