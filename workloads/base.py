"""What every text-classification workload provides: data, model, loss, metrics.

Nothing here knows a strategy or a training loop: the harness builds the model inside
whatever strategy scope it likes, and the loops use :meth:`loss`, :meth:`metrics` and
:meth:`optimizer` to train it.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from workloads import data as data_mod
from workloads.data import KerasLoader, SyntheticSpec, TextData


class TextWorkload(abc.ABC):
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
        import keras

        return keras.optimizers.Nadam(learning_rate=self.learning_rate)

    def load_data(self, source: str, seed: int) -> TextData:
        """Loads ``keras``, ``synthetic`` or a folder (``auto`` is resolved by the caller)."""
        if source == "keras":
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
        ok, why = data_mod.keras_available(self.keras_loader())
        if ok:
            return "keras"
        data_mod.announce_fallback(self.name, why, seed)
        return "synthetic"

