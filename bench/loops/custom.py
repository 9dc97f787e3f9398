"""A custom ``GradientTape`` loop under ``tf.function``, written with public APIs only.

The optimizer's variables are built inside the strategy scope (``optimizer.build``);
without it the first distributed step fails with "You must feed a value for
placeholder tensor". Per-example losses are averaged over the *global* batch with
``tf.nn.compute_average_loss`` so that summing the replicas' gradients is correct (summed,
for a loss of ``reduction="sum"``, as ``fit`` sums it; an example's several values, one per
pixel or time step, are averaged first, as Keras averages every value); the
model's own losses (regularisers, ``add_loss``) are added as ``fit`` adds them, divided by
the replicas (``tf.nn.scale_regularization_loss``).
"""

from __future__ import annotations

from distbench.core import keras_flavour
from distbench.loops.base import (
    LOOPS,
    LoopResult,
    TrainContext,
    TrainingLoop,
    coordinated,
    coordinator,
    keep,
    scheduled_unit,
    train_dataset,
    train_metric,
)


@LOOPS.register
class CustomLoop(TrainingLoop):
    name = "custom"
    summary = "GradientTape step under tf.function with strategy.run and strategy.reduce"
    calls_train_step = False

    def train(self, ctx: TrainContext) -> LoopResult:
        import tensorflow as tf

        cfg, model, strategy = ctx.config, ctx.model, ctx.strategy
        with strategy.scope():
            optimizer = as_compiled(model, self.optimizer(ctx))
            optimizer.build(model.trainable_variables)
            loss_fn = ctx.workload.training_loss(per_example=True)
            summed = keras_flavour.sums(ctx.workload.loss())   # reduction="sum": the global batch's sum, as fit
            metrics = ctx.workload.metrics()
        tracked = train_metric([m.name for m in metrics], ctx.workload.guard())
        watched = next((m for m in metrics if m.name == tracked), None)

        def replica_step(x, y):
            with tf.GradientTape() as tape:
                pred = model(x, training=True)
                values = keras_flavour.per_example(loss_fn, y, pred, summed)
                loss = with_model_losses(model, tf.reduce_sum(values) if summed else
                                         tf.nn.compute_average_loss(values, global_batch_size=cfg.global_batch))
                scaled = scaled_loss(optimizer, loss)
            grads = unscaled_gradients(optimizer, tape.gradient(scaled, model.trainable_variables))
            grads = self.gradients(grads)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            for metric in metrics:
                metric.update_state(y, pred)
            return loss

        if cfg.jit_compile:  # XLA compiles the replica's step; the iterator stays outside it
            replica_step = tf.function(replica_step, jit_compile=True)

        @tf.function
        def train_step(iterator):
            # get_next between two timestamps, ordered by control dependencies: the input wait.
            began = tf.timestamp()
            with tf.control_dependencies([began]):
                x, y = next(iterator)
            with tf.control_dependencies(tf.nest.flatten((x, y), expand_composites=True)):
                waited = tf.timestamp() - began
            per_replica = strategy.run(replica_step, args=(x, y))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None), waited

        # What the replica step was compiled with, read back from its tf.function.
        settings = {"jit_compile": bool(getattr(replica_step, "_jit_compile", False))}
        if coordinated(strategy):
            loss_sum, steps = self._scheduled(ctx, train_step, metrics)
            settings.update(scheduled=True, steps_per_sample=scheduled_unit(cfg.steps_per_epoch))
        else:
            loss_sum, steps = self._stepped(ctx, train_step, metrics)
        return LoopResult(train_accuracy=float(watched.result()) if watched else loss_sum / steps,   # no metric: loss
                          train_loss=loss_sum / steps, settings=settings, train_metric=tracked)

    def _stepped(self, ctx: TrainContext, train_step, metrics) -> tuple[float, int]:
        """Each step timed on its own, ended by bringing its loss to the host; the last
        epoch's loss sum and steps."""
        iterator = keep(iter(ctx.strategy.experimental_distribute_dataset(self.dataset(ctx))))
        for _ in ctx.epochs():
            for metric in metrics:
                metric.reset_state()
            loss_sum, steps = 0.0, 0
            for _ in ctx.steps():
                ctx.clock.start()
                loss, waited = train_step(iterator)
                loss_sum += float(loss)  # float() syncs the device
                ctx.clock.stop()
                ctx.clock.waited(float(waited))
                steps += 1
        return loss_sum, steps

    def _scheduled(self, ctx: TrainContext, train_step, metrics) -> tuple[float, int]:
        """Steps scheduled on the workers through the ClusterCoordinator, a unit at a time:
        each unit is timed from its first schedule to the join that ends its last step."""
        import tensorflow as tf

        strategy, cfg = ctx.strategy, ctx.config
        cluster = coordinator(strategy)

        @tf.function
        def per_worker_dataset():
            return strategy.distribute_datasets_from_function(lambda _: self.dataset(ctx, per_worker=True))

        iterator = keep(iter(cluster.create_per_worker_dataset(per_worker_dataset)))
        unit = scheduled_unit(cfg.steps_per_epoch)
        for _ in ctx.epochs():
            for metric in metrics:
                metric.reset_state()
            loss_sum, steps = 0.0, 0
            while steps < cfg.steps_per_epoch:
                ctx.clock.start()
                losses = [cluster.schedule(train_step, args=(iterator,)) for _ in range(unit)]
                cluster.join()
                ctx.clock.stop(steps=unit)
                loss_sum += sum(float(r.fetch()[0]) for r in losses)
                steps += unit
        return loss_sum, steps

    def dataset(self, ctx: TrainContext, per_worker: bool = False):
        """The global-batch dataset the loop distributes (tests override it to inject bugs)."""
        return train_dataset(ctx, per_worker=per_worker)

    def optimizer(self, ctx: TrainContext):
        """The workload's optimizer, built in scope (tests override it to inject bugs)."""
        return ctx.workload.optimizer()

    def gradients(self, grads: list) -> list:
        """One replica's gradients before they are applied (tests override it to inject bugs)."""
        return grads


def with_model_losses(model, loss):
    """``loss`` and the model's own losses (regularisers, ``add_loss``) as ``fit`` adds them:
    divided by the replicas, so that their sum over the replicas counts them once."""
    import tensorflow as tf

    if not model.losses:
        return loss
    return loss + tf.nn.scale_regularization_loss(tf.add_n([tf.cast(extra, loss.dtype) for extra in model.losses]))


# Mixed precision, as fit does it: a LossScaleOptimizer's loss is scaled before the
# gradients (float16 gradients would underflow) and its gradients unscaled before the
# update. Keras 3: every optimizer has scale_loss (1x but for a LossScaleOptimizer) and a
# LossScaleOptimizer's apply_gradients unscales; tf-keras: its LossScaleOptimizer has
# get_scaled_loss and get_unscaled_gradients, and apply_gradients does not unscale.
# Without it an SGD step was 32,768 times too small (the default scale).
def as_compiled(model, optimizer):
    """``optimizer`` as ``compile`` gives it to fit: under a ``mixed_float16`` model a
    LossScaleOptimizer around it (both flavours' compile wrap it so). The custom loop had
    stepped a mixed-precision model unscaled: a float16 gradient of 1e-9 underflowed to 0,
    and the layer learned nothing where fit's learned."""
    if getattr(getattr(model, "dtype_policy", None), "name", None) != "mixed_float16":
        return optimizer
    keras = keras_flavour.api()
    wrapper = getattr(keras.optimizers, "LossScaleOptimizer", None) or keras.mixed_precision.LossScaleOptimizer
    return optimizer if isinstance(optimizer, wrapper) or hasattr(optimizer, "inner_optimizer") else wrapper(optimizer)


def scaled_loss(optimizer, loss):
    if hasattr(optimizer, "scale_loss"):
        return optimizer.scale_loss(loss)
    if hasattr(optimizer, "get_scaled_loss"):
        return optimizer.get_scaled_loss(loss)
    return loss


def unscaled_gradients(optimizer, grads: list) -> list:
    if not hasattr(optimizer, "scale_loss") and hasattr(optimizer, "get_unscaled_gradients"):
        return optimizer.get_unscaled_gradients(grads)
    return grads
