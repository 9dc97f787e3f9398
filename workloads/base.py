"""Text classifiers: a user of the general protocol (:mod:`distbench.workloads.protocol`)
whose data is integer token sequences: a Keras dataset, synthetic, or a folder of texts.

Nothing here knows a strategy or a training loop: the harness builds the model inside
whatever strategy scope it likes, and the loops use :meth:`loss`, :meth:`metrics` and
:meth:`optimizer` to train it.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np
from distbench.core import keras_flavour
from distbench.core.errors import UserError
from distbench.workloads import data as data_mod
from distbench.workloads.data import KerasLoader, SyntheticSpec, TextData
from distbench.workloads.metrics import roc_auc
from distbench.workloads.model_check import declared_inputs, first_line
from distbench.workloads.protocol import EVAL_BATCH, Workload


class TextWorkload(Workload, abc.ABC):
    """A Keras text classifier on integer token sequences (``sequence_length`` long)."""

    name: ClassVar[str]
    summary: ClassVar[str]
    # The test metric the accuracy guard compares between cells (a key of ``score``).
    guard_metric: ClassVar[str] = "accuracy"
    # The keys of ``score``: the metrics a --target may name.
    test_metrics: ClassVar[tuple[str, ...]] = ("accuracy",)
    # --target default, by data source ("synthetic", "keras"): the guard metric at a level
    # the reference cell reaches in a few epochs, measured (docs/measurements.md).
    default_targets: ClassVar[dict[str, str]] = {}
    kind: ClassVar[str] = "training"
    vocab_size: ClassVar[int]
    num_classes: ClassVar[int]
    synthetic_spec: ClassVar[SyntheticSpec]
    learning_rate: ClassVar[float] = 0.001   # Nadam's default
    sequence_length: ClassVar[int] = data_mod.SEQUENCE_LENGTH
    # The Keras flavours the workload's code runs under (distbench.core.keras_flavour). A
    # model built with ``import keras`` is Keras 3's; one built from ``distbench.keras_api()``
    # (``tf.keras`` of the cell's process) runs under both and may list both.
    keras_flavours: ClassVar[tuple[str, ...]] = ("keras3",)
    # A user's (TextClassifier's) model is checked against its texts before a run; the
    # built-ins' data is made to fit them by construction.
    preflight: ClassVar[bool] = True
    # The file its Keras loader keeps in Keras's folder (``reuters.npz``): with it, ``auto``
    # need not wait on a download another dataset's failure says cannot work now.
    keras_file: ClassVar[str | None] = None
    lr_halving_epoch: ClassVar[int | None] = 5   # train_on_batch halves the rate from epoch 5, as published

    @abc.abstractmethod
    def keras_loader(self) -> KerasLoader:
        """A zero-argument callable returning ``keras.datasets.X.load_data(...)``."""

    @abc.abstractmethod
    def build_model(self, vocab_size: int):
        """A fresh, built ``keras.Model``."""

    @abc.abstractmethod
    def loss(self, reduction: str | None = "sum_over_batch_size"):
        """A fresh Keras loss; ``reduction=None`` gives per-example losses."""

    @abc.abstractmethod
    def metrics(self) -> list:
        """Fresh Keras metric objects, named as they appear in records."""

    @abc.abstractmethod
    def score(self, y_true: np.ndarray, y_prob: np.ndarray) -> dict[str, float]:
        """Test metrics from predicted probabilities (pure NumPy, no TensorFlow state)."""

    def optimizer(self):
        keras = keras_flavour.api()

        return keras.optimizers.Nadam(learning_rate=self.learning_rate)

    def new_model(self, data):
        """The model for ``data``; one that declares no inputs (a subclassed ``keras.Model``) is
        built by a call on two training texts, as any workload's is."""
        model = self.build_model(data.vocab_size)
        if declared_inputs(model) is None and hasattr(model, "trainable_variables"):
            import tensorflow as tf

            model(tf.convert_to_tensor(data.x_train[:2]), training=False)
        return model

    def check(self, model, data: TextData) -> dict:
        """Refuses, in one line, a model that does not take the texts as they are vectorised
        (``sequence_length`` tokens each) or whose output and loss do not take their labels;
        what the run needs to know of the workload."""
        import tensorflow as tf   # tensors, as the loops give them: tf-keras's losses squeeze only a tensor's labels

        x, y = tf.convert_to_tensor(data.x_train[:2]), tf.convert_to_tensor(data.y_train[:2])
        inputs = declared_inputs(model)
        shapes = [tuple(t.shape[1:]) for t in inputs or []]
        if inputs is not None and (len(shapes) != 1 or any(w not in (None, g) for w, g in zip(shapes[0], x.shape[1:]))
                                   or len(shapes[0]) != 1):
            raise UserError(f"{self.name}: the model takes {' and '.join(map(str, shapes))} per example; its texts "
                            f"are {x.shape[1]} tokens each (sequence_length {self.sequence_length}): start it with "
                            f"keras.Input(shape=({x.shape[1]},)), or set sequence_length to what it takes.")
        loss = self.training_loss()
        try:
            float(np.mean(np.asarray(loss(y, model(x, training=False)))))
        except Exception as exc:  # noqa: BLE001 - Keras raises ValueError, TF InvalidArgumentError
            raise UserError(f"{self.name}: the model's output does not take its {self.num_classes} classes' labels "
                            f"under {type(loss).__name__}: {first_line(exc)}") from None
        names = self.metric_names()
        return {"test_metrics": list(names), "guard_metric": self.guard(),
                "directions": {m: self.direction(m) for m in names}, "data": data.describe()}

    def training_loss(self, per_example: bool = False):
        return self.loss(reduction=None) if per_example else self.loss()

    def load(self, source: str, seed: int) -> TextData:
        return self.load_data(source, seed)

    def metric_names(self) -> tuple[str, ...]:
        return tuple(self.test_metrics)

    def guard(self) -> str:
        return self.guard_metric

    def evaluate(self, plain, data, limit: int | None) -> dict:
        """Test metrics by :meth:`score` from the predicted probabilities of the first
        ``limit`` test examples."""
        n = len(data.y_test) if limit is None else min(limit, len(data.y_test))
        x = data.x_test[:n]
        probs = np.concatenate(
            [np.asarray(plain(x[i : i + EVAL_BATCH], training=False)) for i in range(0, n, EVAL_BATCH)]
        )
        return {"examples": n, **self.score(data.y_test[:n], probs)}

    def load_data(self, source: str, seed: int) -> TextData:
        """Loads ``keras``, ``synthetic`` or a folder (``auto`` is resolved by the caller)."""
        if source == "keras":
            if self.keras_loader() is None:
                raise UserError(f"{self.name} has no Keras dataset; give --data synthetic or a folder.")
            return data_mod.from_keras(self.keras_loader(), self.vocab_size, self.num_classes, self.sequence_length)
        if source == "synthetic":
            return data_mod.synthetic(self.synthetic_spec, seed)
        return data_mod.from_folder(source, self.vocab_size, self.num_classes, seed, self.sequence_length)

    def cells(self, strategies: list[str], loops: list[str]) -> list[tuple[str, str]]:
        """(strategy, loop) pairs of a selection this workload runs: all of them."""
        return [(s, lp) for s in strategies for lp in loops]

    @staticmethod
    def unavailable(spec, adapter, hw) -> str | None:
        """Why ``spec`` cannot run on ``hw`` beyond the adapter's own reasons (None: it can)."""
        return None

    def resolve(self, spec):
        """``spec`` ready to run: its data source resolved (``auto`` -> keras or synthetic)."""
        return spec.replace(data=self.resolve_source(spec.data, spec.seed))

    def resolve_source(self, source: str, seed: int) -> str:
        """Turns ``auto`` into ``keras`` or ``synthetic`` (announcing a fallback once)."""
        data_mod.check_source(source)
        if source != "auto":
            return source
        chosen, why = self.auto_source()
        if why:
            data_mod.announce_fallback(self.name, why, seed)
        return chosen

    def auto_source(self) -> tuple[str, str]:
        """What ``auto`` means here: ``("keras", "")``, or ``("synthetic", why not Keras's
        dataset)``. Trying the Keras loader imports Keras (the worker's ``data`` task asks
        this for a parent that keeps TensorFlow out of its process)."""
        if self.keras_loader() is None:
            return "synthetic", "it has no Keras dataset"
        ok, why = data_mod.keras_available(self.keras_loader(), self.name, self.keras_file)
        return ("keras", "") if ok else ("synthetic", why)



class TextClassifier(TextWorkload):
    """The shortest way to benchmark your own Keras text classifier.

    Set ``name``, ``vocab_size``, ``num_classes`` (and ``sequence_length``, default 300) and
    implement :meth:`build_model`; run it on your folder of texts (``--data path``: one
    sub-folder per class, or ``train/`` and ``test/``), or on synthetic data of its shapes.
    Two classes: a sigmoid output of one unit, binary cross-entropy, accuracy and AUC (the
    guard's metric); more: a softmax output, sparse categorical cross-entropy, accuracy
    (and top-5 from 6 classes on). Override any method to change that.
    """

    summary = "a user's Keras text classifier"

    def keras_loader(self):
        return None   # no Keras dataset: auto means synthetic data of the workload's shapes

    @property
    def binary(self) -> bool:
        return self.num_classes == 2

    @property
    def guard_metric(self) -> str:  # type: ignore[override]
        return "auc" if self.binary else "accuracy"

    @property
    def test_metrics(self) -> tuple[str, ...]:  # type: ignore[override]
        if self.binary:
            return ("accuracy", "auc")
        return ("accuracy", "top5_accuracy") if self.num_classes > 5 else ("accuracy",)

    @property
    def synthetic_spec(self) -> SyntheticSpec:  # type: ignore[override]
        return SyntheticSpec(train_examples=8000, test_examples=2000, vocab_size=self.vocab_size,
                             num_classes=self.num_classes, mean_length=min(150, self.sequence_length),
                             signal=0.02, sequence_length=self.sequence_length)

    def loss(self, reduction: str | None = "sum_over_batch_size"):
        keras = keras_flavour.api()
        reduction = keras_flavour.reduction(reduction)

        if self.binary:
            return keras.losses.BinaryCrossentropy(reduction=reduction)
        return keras.losses.SparseCategoricalCrossentropy(reduction=reduction)

    def metrics(self) -> list:
        keras = keras_flavour.api()

        if self.binary:
            return [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
        found = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        if self.num_classes > 5:
            found.append(keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy"))
        return found

    def score(self, y_true: np.ndarray, y_prob: np.ndarray) -> dict[str, float]:
        if self.binary:
            p = y_prob.reshape(-1)
            return {"accuracy": float(np.mean((p > 0.5) == (y_true == 1))), "auc": roc_auc(y_true, p)}
        out = {"accuracy": float(np.mean(np.argmax(y_prob, axis=1) == y_true))}
        if self.num_classes > 5:
            top5 = np.argsort(-y_prob, axis=1)[:, :5]
            out["top5_accuracy"] = float(np.mean(np.any(top5 == y_true[:, None], axis=1)))
        return out
