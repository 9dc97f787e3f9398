"""The workload protocol: any Keras model, any data (``from distbench import Workload``).

A workload says how to build its model, where its examples come from, and how to train
and score it; the harness does the rest under every strategy and loop. Nothing here
knows a strategy or a training loop.

    class Digits(Workload):
        name = "digits"
        guard_metric = "accuracy"

        def build_model(self):
            ...                                # a fresh keras.Model

        def data(self, source, seed):
            return (x_train, y_train), (x_test, y_test)

        def loss(self):
            return keras.losses.SparseCategoricalCrossentropy()

        def metrics(self):
            return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

The text workloads (:mod:`distbench.workloads.base`) are users of it.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from distbench.core import keras_flavour, targets
from distbench.core.errors import UserError
from distbench.workloads.inputs import Data, normalize, synthetic_for
from distbench.workloads.model_check import called, check, declared_inputs

EVAL_BATCH = 1024   # evaluation batches: at 256, eager calls cost multibranch twice the time


class Workload(abc.ABC):
    """Any Keras model. Override :meth:`build_model`, :meth:`loss` and, usually,
    :meth:`data` and :meth:`metrics`; everything else has a default."""

    name: ClassVar[str]
    summary: ClassVar[str] = "a user's Keras model"
    kind: ClassVar[str] = "training"
    # The test metric the accuracy guard compares between cells: a metric's name, or "loss".
    # None: the first of metrics(), else the loss.
    guard_metric: ClassVar[str | None] = None
    # Which way is better, for metrics whose name does not say (core.targets.direction reads
    # names: loss, mae, mse, ... error are lower-is-better).
    directions: ClassVar[dict[str, str]] = {}
    # The keys of the test metrics (a --target may name them); None: metrics()' names and "loss".
    test_metrics: ClassVar[tuple[str, ...] | None] = None
    # --target default by data: "synthetic", or "auto" (the workload's own data()).
    default_targets: ClassVar[dict[str, str]] = {}
    # The synthetic stand-in's sizes (train, test), when data() is not used.
    synthetic_examples: ClassVar[tuple[int, int]] = (2048, 512)
    keras_flavours: ClassVar[tuple[str, ...]] = ("keras3",)
    # The epoch (1-based) at whose start train_on_batch halves the learning rate (the text
    # workloads' published recipe); None: never.
    lr_halving_epoch: ClassVar[int | None] = None
    # Whether a run first checks, in one worker, that data() fits the model (the text
    # workloads' data is checked by construction).
    preflight: ClassVar[bool] = True

    @abc.abstractmethod
    def build_model(self):
        """A fresh, built ``keras.Model`` (called inside the strategy's scope)."""

    def data(self, source: str, seed: int):
        """The examples for ``--data source`` ("auto" unless the user names something):
        ``((x_train, y_train), (x_test, y_test))`` with x an array or a dict of arrays by
        input name, or ``(make_train, make_test)``: functions returning a ``tf.data.Dataset``
        of unbatched ``(x, y)``, or a :class:`~distbench.workloads.inputs.Data`. None: synthetic
        examples of the model's shapes."""
        return None

    @abc.abstractmethod
    def loss(self):
        """A fresh Keras loss (its reduction is the harness's business)."""

    def metrics(self) -> list:
        """Fresh Keras metric objects; their names are the records' (and --target's)."""
        return []

    def optimizer(self):
        return keras_flavour.api().optimizers.Adam()

    # --- what the harness calls -------------------------------------------------------

    def new_model(self, data):
        """A fresh model for ``data`` (text workloads size their Embedding from it); UserError
        when ``build_model`` gives something else than a built Keras model. One that declares
        no inputs (a subclassed ``keras.Model``) is built by a call on two train examples."""
        return built(self.build_model(), self.name, data)

    def training_loss(self, per_example: bool = False):
        """The loss; ``per_example``: one value per example (``reduction=None``), which the
        custom loop averages over the global batch. Any Keras loss object: its reduction is
        read when it is called."""
        loss = self.loss()
        if isinstance(loss, str) or not hasattr(loss, "reduction"):   # a name, or a function: one value per example
            found = keras_flavour.api().losses.get(loss) if isinstance(loss, str) else loss
            # Called directly (the custom loop, the FLOPs count, the bare loop), with labels of the
            # output's rank as compile's wrapper makes them (the FLOPs count had failed every cell)
            return keras_flavour.same_rank(found)
        if not per_example:
            return loss
        # A copy of its attributes, not copy.copy: Keras copies a loss through its config, which
        # lost Huber's delta (the custom loop trained, and every loop's stored test loss was, delta
        # 1.0) and cannot rebuild a loss class of the user's that Keras has not registered.
        found = object.__new__(type(loss))
        found.__dict__.update(vars(loss))
        found.reduction = keras_flavour.reduction(None)
        return found

    def load(self, source: str, seed: int) -> Data:
        """The examples for ``source`` (``synthetic``: of the model's own shapes)."""
        found = None if source == "synthetic" else self.data(source, seed)
        if found is None:
            return normalize(self.synthetic(seed), self.name, "synthetic")
        return normalize(found, self.name, source)

    def synthetic(self, seed: int):
        """Stand-in examples (``--data synthetic``, or when :meth:`data` gives none), in any
        form :meth:`data` may return: by default, of the model's own shapes."""
        train, test = self.synthetic_examples
        return synthetic_for(built(self.build_model(), self.name), self.loss(), train, test, seed)

    def resolve(self, spec):
        return spec

    def resolve_source(self, source: str, seed: int) -> str:
        return source

    def cells(self, strategies: list[str], loops: list[str]) -> list[tuple[str, str]]:
        return [(s, lp) for s in strategies for lp in loops]

    @staticmethod
    def unavailable(spec, adapter, hw) -> str | None:
        return None

    def metric_names(self) -> tuple[str, ...]:
        """The test metrics' keys (instantiates the metrics: child side)."""
        return tuple(self.test_metrics or (*(m.name for m in self.metrics()), "loss"))

    def guard(self) -> str:
        """The guard's metric (instantiates the metrics when not declared: child side)."""
        return self.guard_metric or next((m.name for m in self.metrics()), "loss")

    def direction(self, metric: str) -> str:
        """``higher`` or ``lower`` (is better) for ``metric``."""
        return self.directions.get(metric) or targets.direction(metric)

    def check(self, model, data: Data) -> dict:
        """Refuses (UserError, one line) data that does not fit ``model``, and a guard metric
        it does not compute; what the run needs to know of the workload."""
        per_example = self.training_loss(per_example=True)   # a function's as compile calls it, ranks aligned
        check(self.name, model, data, per_example)
        one_per_example(self.name, model, data, per_example)
        for metric in self.metrics():
            if not hasattr(metric, "update_state"):   # compile takes names and functions; the loops take objects
                given = f"{metric!r}" if isinstance(metric, str) else getattr(metric, "__name__", type(metric).__name__)
                raise UserError(f"{self.name}: metrics() gives {given}, not a Keras metric object; give objects, e.g. "
                                "keras.metrics.SparseCategoricalAccuracy(name=\"accuracy\"), or "
                                "keras.metrics.MeanMetricWrapper(fn, name=\"rmse\") for a function.")
        halving = self.lr_halving_epoch
        if halving is not None and not hasattr(self.optimizer().learning_rate, "assign"):
            raise UserError(f"{self.name}: lr_halving_epoch = {halving}: train_on_batch halves the optimizer's "
                            "learning rate at that epoch, and this optimizer's follows a schedule; leave "
                            "lr_halving_epoch out (the schedule sets the rate), or give a fixed rate.")
        names, guard = self.metric_names(), self.guard()
        if guard not in names:
            raise UserError(f"{self.name}: guard_metric {guard!r} is not one the model computes; it computes "
                             f"{', '.join(names)}.")
        return {"test_metrics": list(names), "guard_metric": guard,
                "directions": {m: self.direction(m) for m in names}, "data": data.describe()}

    def evaluate(self, plain, data, limit: int | None) -> dict:
        """Test metrics on the first ``limit`` test examples, from ``plain`` (a strategy-free
        copy holding the trained weights): the workload's metrics and the mean loss."""
        import numpy as np

        metrics, loss = self.metrics(), self.training_loss(per_example=True)
        ds = data.dataset("test")
        if limit is not None:
            ds = ds.take(limit)
        n, total = 0, 0.0
        for x, y in ds.batch(EVAL_BATCH):
            pred = plain(x, training=False)
            for metric in metrics:
                metric.update_state(y, pred)
            total += float(np.sum(np.asarray(keras_flavour.per_example(loss, y, pred))))
            n += int(y.shape[0])
        return {"examples": n, **{m.name: float(m.result()) for m in metrics}, "loss": total / max(n, 1)}


def built(model, name: str, data: Data | None = None):
    """``model`` when it is a Keras model with declared inputs, or, with ``data``, one that
    takes two of its train examples (a subclassed model, built by that call); UserError naming
    what to return otherwise (``None``; a model that cannot take the examples)."""
    if model is None or not hasattr(model, "trainable_variables"):
        raise UserError(f"{name}: build_model() returned {type(model).__name__ if model is not None else 'None'}; "
                        "return a Keras model, built (e.g. keras.Sequential([keras.Input(shape=...), ...])).")
    if declared_inputs(model) is None:
        if data is None:
            raise UserError(f"{name}: build_model() returned a model that declares no inputs (a subclassed "
                            "keras.Model): synthetic examples take the model's input shapes; start it with "
                            "keras.Input(shape=...), or give the workload data() or a synthetic(seed) of its own.")
        called(name, model, data)
    _this_keras(name, model)
    return model


def _this_keras(name: str, model) -> None:
    """Refuses a model of the other Keras than this process's: one from ``import keras`` (Keras
    3) in a tf_keras cell failed in TensorFlow ("'Variable' object has no attribute
    '_unique_id'"), after the check had passed it."""
    roots = [c.__module__.split(".")[0] for c in type(model).__mro__]
    found = next((r for r in roots if r in ("keras", "tf_keras")), None)
    mine = keras_flavour.current()
    if found and {"keras": "keras3", "tf_keras": "tf_keras"}[found] != mine:
        raise UserError(f"{name}: build_model() returned a {'Keras 3' if found == 'keras' else 'tf-keras'} model "
                        f"({type(model).__qualname__}) in a {mine} cell; build it from distbench.keras_api(), this "
                        "process's Keras, or list only the Keras it is written for in keras_flavours.")


def one_per_example(name: str, model, data: Data, loss) -> None:
    """Refuses a loss that gives no values per example (a function ending in a ``reduce_mean``):
    the custom loop averages each example's over the global batch, and the test loss sums them
    (TensorFlow failed the custom cell mid-run, "Expected a tensor with at least rank 1")."""
    import numpy as np
    import tensorflow as tf

    x, y = data.first(2)
    value = np.asarray(keras_flavour.per_example(loss, tf.convert_to_tensor(y), model(x, training=False)))
    if value.ndim == 0 or value.shape[0] != np.shape(y)[0]:
        got = "one value" if value.ndim == 0 else f"values of shape {value.shape}"
        raise UserError(f"{name}: loss() gives {got} for 2 examples; the custom loop averages the values of each "
                        "example over the global batch: return a Keras loss object, or a function of values per "
                        "example, not reduced over the batch (e.g. tf.reduce_mean(..., axis=-1)).")
