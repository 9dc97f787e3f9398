"""What a training loop receives and returns, and the input pipeline all loops share."""

from __future__ import annotations

import abc
import atexit
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from distbench.core import keras_flavour
from distbench.core.registry import Registry
from distbench.trackers import input_wait
from distbench.trackers.timing import StepClock

# Epoch (1-based) at whose start the train_on_batch loop halves the learning rate, as in
# the published recipe; applied only to runs of at least this many epochs.
LR_HALVING_EPOCH = 5


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    steps_per_epoch: int
    global_batch: int
    steps_per_execution: int
    seed: int
    jit_compile: bool = False
    prefetch: str = "auto"        # the input pipeline's last prefetch: auto (AUTOTUNE), off, or batches
    warmup_steps: int = 5         # steps after the cold start left out of the steady steps


@dataclass
class TrainContext:
    """Everything a loop needs; the model was built inside ``strategy.scope()``."""

    strategy: Any
    workload: Any
    model: Any
    data: Any
    config: TrainConfig
    clock: StepClock
    # Called after each timed unit with the steps done so far; True stops training early
    # (a time-to-target cell that reached its target: distbench.trackers.target.Tracker).
    after_step: Callable[[int], bool] | None = None

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    stopped: bool = False

    def step_done(self) -> bool:
        """After each timed unit, outside the timed region: True when training should stop."""
        self.stopped = self.stopped or (self.after_step is not None and self.after_step(self.clock.total_steps))
        return self.stopped

    def epochs(self):
        """The epochs to train, ending early once training should stop."""
        for epoch in range(self.config.epochs):
            if self.stopped:
                return
            yield epoch

    def steps(self):
        """The steps of one epoch; after each (the loop's body has timed it), asks
        :meth:`step_done` and ends early when training should stop."""
        for step in range(self.config.steps_per_epoch):
            yield step
            if self.step_done():
                return


@dataclass
class LoopResult:
    train_accuracy: float      # the training metric (train_metric) over the last epoch
    train_loss: float          # mean loss of the last epoch
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    train_metric: str = "accuracy"


def train_metric(names: list[str], guard: str) -> str:
    """The metric a loop reports on the training examples: accuracy when the workload
    tracks it, else the guard's metric, else its first; ``loss`` when it has none."""
    for name in ("accuracy", guard):
        if name in names:
            return name
    return names[0] if names else "loss"


class TrainingLoop(abc.ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    # Whether the loop trains through the model's train_step (fit, train_on_batch); one that
    # runs a step of its own (the custom loop and its subclasses) cannot train a model that
    # defines its own (:func:`own_train_step`).
    calls_train_step: ClassVar[bool] = True

    @abc.abstractmethod
    def train(self, ctx: TrainContext) -> LoopResult:
        """Trains ``ctx.model``; each step is timed on ``ctx.clock`` after a device sync."""

    def input_wait(self, ctx: TrainContext, steady: int) -> dict:
        """How long the steady units (the last ``steady``) waited for input
        (:mod:`distbench.trackers.input_wait`): measured where the loop timed each ``get_next``."""
        if coordinated(ctx.strategy) or len(ctx.clock.waits) < len(ctx.clock.durations):
            return input_wait.not_measured()
        return input_wait.measured(ctx.clock, steady)

    def timing_cost(self, ctx: TrainContext, pairs: int) -> dict | None:
        """What timing each step costs this loop's wall time, measured after :meth:`train`
        (it trains further); None when timing is not separable from the loop's own work
        (the custom loop and ``train_on_batch`` bring every step's loss to the host anyway)."""
        return None


def own_train_step(loop: TrainingLoop, model) -> str | None:
    """Why ``loop`` cannot train ``model``: the model's class defines its own ``train_step``
    (a GAN's, a custom loss's), which this loop would not run. Its steps would time, and its
    accuracy judge, another training than the model's: a 1.5x slower ``train_step`` read
    ``same`` under the custom loop (``check --against``, exit 0), said only in a record note."""
    own = None if loop.calls_train_step else keras_flavour.own_train_step(model)
    if own is None:
        return None
    return (f"{loop.name}: the model defines its own train_step ({own.__qualname__}), which this loop does not run "
            "(it trains with its own GradientTape step); fit and train_on_batch call it")


def compile_model(ctx: TrainContext, steps_per_execution: int = 1) -> None:
    """Compiles the model with the workload's optimizer, loss and metrics, in scope.

    ``jit_compile`` is always explicit: Keras's default ("auto") turns XLA on for a GPU
    model without a tf.distribute strategy and off under one (Keras 3
    ``Trainer._resolve_auto_jit_compile``), which would compare XLA against no XLA
    whenever a strategy is compared with the default.
    """
    with ctx.strategy.scope():
        ctx.model.compile(
            optimizer=ctx.workload.optimizer(),
            loss=ctx.workload.loss(),
            metrics=ctx.workload.metrics(),
            steps_per_execution=steps_per_execution,
            jit_compile=ctx.config.jit_compile,
        )


def train_dataset(ctx: TrainContext, shuffle: bool = True, per_worker: bool = False):
    """The workload's training examples shuffled (seeded; in-memory arrays only: a user's
    ``tf.data`` pipeline keeps its own order), batched to the global batch, repeated,
    prefetched (``prefetch``: AUTOTUNE unless the cell says otherwise).

    ``drop_remainder`` keeps every batch the same shape, so no step retraces, and every
    replica always gets ``global_batch / replicas`` examples. ``shuffle=False``: the
    training set in order, for measurements that start many short ``fit`` calls (each
    new iterator would first fill a shuffle buffer of the whole training set).
    ``per_worker``: one worker's copy under a parameter-server strategy. Every worker builds
    it from the same traced function, so every worker shuffles with the same seeds; each
    starts reading that stream at its own offset, drawn from its clock (microseconds) when
    it builds the dataset, so that the workers read different examples at each step (there
    is no per-worker shard; batches may span epochs). Without the offset each batch was
    trained once per worker, and multibranch's parameter-server cells mostly stayed near
    chance (an AUC of 0.50 to 0.57 where one worker reached 0.90).
    """
    import tensorflow as tf

    data = ctx.data
    ds = data.dataset("train")
    if shuffle and data.kind == "arrays":
        ds = ds.shuffle(data.train_examples, seed=ctx.config.seed, reshuffle_each_iteration=True)
    if per_worker:
        offset = tf.cast(tf.timestamp() * 1e6, tf.int64) % (data.train_examples or OFFSET_SPAN)
        ds = ds.repeat().skip(offset).batch(ctx.config.global_batch, drop_remainder=True)
    else:
        ds = ds.batch(ctx.config.global_batch, drop_remainder=True).repeat()
    # Across workers, shard by element, explicitly (in-memory data has no files to shard;
    # a user's pipeline is read whole by every worker, which keeps its own share): every
    # worker shuffles with the same seed, so the shards partition each global batch.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return prefetched(ds.with_options(options), ctx.config.prefetch)


# A tf.data iterator's destructor waits for tf.data's autotuning thread (its root
# dataset's "tf_data_model" thread) to end, idle: up to 7 s per iterator here after
# training under virtual devices, 2 to 3 s in most such cells (run 0003 of e3e5cf: 39 s of
# its cells' training phases were outside their steps, 20 s in the six virtual ones). A
# worker ends with os._exit, so an iterator kept here is never destroyed and the wait is
# never paid. Nothing timed changes: the destruction came after the last timed step. Its
# prefetch runs on until its buffer is full, then idles.
_KEPT: list = []


def keep(iterator):
    """``iterator``, kept alive until the process exits (see above)."""
    _KEPT.append(iterator)
    return iterator


def release_kept() -> None:
    """Drops the iterators earlier cells of this process kept (a worker runs one cell;
    in-process callers, tests, run many), on a thread of their own: the destructor's wait
    grows with the time an iterator was kept, to most of a minute in this checkout's
    tests, and the next cell need not wait for it (it waits idle beside the cell's steps).
    The process waits for such a thread at its exit, before TensorFlow's runtime goes."""
    if _KEPT:
        dropped = _KEPT[:]
        _KEPT.clear()
        thread = threading.Thread(target=dropped.clear, name="distbench-release-kept", daemon=True)
        thread.start()
        if not _RELEASING:
            atexit.register(_join_releases)
        _RELEASING[:] = [t for t in _RELEASING if t.is_alive()] + [thread]


RELEASE_EXIT_WAIT_S = 60.0
_RELEASING: list[threading.Thread] = []   # release threads not known to have ended; one exit handler joins them


def _join_releases() -> None:
    """At exit, waits for the release threads still running, at most :data:`RELEASE_EXIT_WAIT_S`
    for them all (one handler: it had been one handler, and one wait, per release)."""
    until = time.monotonic() + RELEASE_EXIT_WAIT_S
    for thread in _RELEASING:
        thread.join(max(0.0, until - time.monotonic()))


def keeping_fit_iterator():
    """A ``fit`` callback that keeps the input iterator of the ``fit`` it is given to
    (:func:`keep`): Keras makes it inside ``fit`` and drops it when ``fit`` returns. Its
    ``train_function`` is wrapped for one call, the first step (the cold start, never a
    sample): that call keeps the iterator it is given and puts the function back. Both
    Keras 3 and tf-keras pass ``fit``'s one iterator to every ``train_function`` call when
    ``steps_per_epoch`` is set on a repeated dataset."""
    keras = keras_flavour.api()

    class KeepIterator(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            model = self.model
            function = model.train_function

            def first_step(iterator):
                model.train_function = function
                keep(iterator)
                return function(iterator)

            model.train_function = first_step

    return KeepIterator()


OFFSET_SPAN = 10000   # a parameter-server worker's start offset in a dataset of unknown length
SHARDING = ("each worker reads the whole input and keeps every Nth element of each global batch "
            "(tf.data AutoShardPolicy.DATA); the replicas of a worker split its share")
# Under a parameter-server strategy (train_dataset's per_worker): no shard.
PER_WORKER_COPY = ("each worker reads its own copy of the whole input from an offset of its own, drawn when it "
                   "builds the dataset (no per-worker shard; batches may span epochs)")


def prefetched(ds, prefetch: str):
    """``ds`` with its last prefetch: ``auto`` (tf.data.AUTOTUNE), ``off``, or a number of batches.

    ``off``: nothing runs ahead of the step that tf.data's optimiser adds. It would inject a
    prefetch itself, fuse the map before distbench's ``batch`` into one map-and-batch that
    fills batches on a thread of its own (a slow map's batch was ready in under a millisecond
    after the step had been away 200 ms, against 57-66 ms without the fusion), and make
    stateless maps parallel, each with its own buffer. The user's own ``prefetch`` and
    ``num_parallel_calls`` stay as written (:data:`PREFETCH_OFF`).
    """
    import tensorflow as tf

    if prefetch == "off":
        options = tf.data.Options()
        options.experimental_optimization.inject_prefetch = False
        options.experimental_optimization.map_and_batch_fusion = False
        options.experimental_optimization.map_parallelization = False
        return ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE if prefetch == "auto" else int(prefetch))


PREFETCH_OFF = ("no final prefetch; tf.data's injected prefetch, map-and-batch fusion and map parallelisation "
                "off (the pipeline's own prefetch and num_parallel_calls kept)")

# Under a parameter-server strategy steps are scheduled asynchronously: the coordinator
# schedules up to this many, then waits for them all (join); each unit is one timed sample.
SCHEDULED_UNIT_STEPS = 10


def coordinated(strategy) -> bool:
    """Whether ``strategy`` schedules steps through a ClusterCoordinator (ParameterServerStrategy)."""
    return "ParameterServer" in type(strategy).__name__


def coordinator(strategy):
    """The strategy's ClusterCoordinator (TensorFlow keeps one per strategy)."""
    import tensorflow as tf

    return tf.distribute.coordinator.ClusterCoordinator(strategy)


def scheduled_unit(steps_per_epoch: int) -> int:
    """The steps of one scheduled unit: the largest divisor of ``steps_per_epoch`` up to
    :data:`SCHEDULED_UNIT_STEPS`, so that units tile each epoch."""
    return max(d for d in range(1, min(SCHEDULED_UNIT_STEPS, steps_per_epoch) + 1) if steps_per_epoch % d == 0)


# After the protocol it checks classes from outside against.
LOOPS = Registry("loop", "distbench.loops", needs=("name", "train"), base=TrainingLoop)
