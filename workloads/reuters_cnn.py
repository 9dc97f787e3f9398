"""The Reuters newswire 1-D CNN: 46 topics from 300-token sequences, 332,856 parameters."""

from __future__ import annotations

import numpy as np
from distbench.core import keras_flavour
from distbench.workloads.base import TextWorkload
from distbench.workloads.data import SEQUENCE_LENGTH, SyntheticSpec
from distbench.workloads.registry import WORKLOADS

# keras.datasets.reuters: ids go up to 30,981 with index_from=3, hence 30,982 rows.
VOCAB_SIZE = 30982
NUM_CLASSES = 46


def _load_reuters():
    import keras

    return keras.datasets.reuters.load_data(num_words=VOCAB_SIZE)


@WORKLOADS.register
class ReutersCnn(TextWorkload):
    name = "reuters_cnn"
    preflight = False   # built in: its data is made to fit it by construction
    summary = "Reuters 46-topic 1-D CNN (Embedding 30982x7, Conv1D 64/5, Conv1D 32/3)"
    vocab_size = VOCAB_SIZE
    num_classes = NUM_CLASSES
    test_metrics = ("accuracy", "top5_accuracy")
    keras_flavours = keras_flavour.FLAVOURS
    keras_file = "reuters.npz"
    default_targets = {"synthetic": "accuracy=0.6"}
    # The real set's shapes: 8,982 train / 2,246 test newswires, 46 imbalanced topics
    # (the largest ~26% of the synthetic set), mean length ~145 tokens.
    synthetic_spec = SyntheticSpec(
        train_examples=8982, test_examples=2246, vocab_size=VOCAB_SIZE,
        num_classes=NUM_CLASSES, skew=1.1, mean_length=145, signal=0.08,
    )

    def keras_loader(self):
        return _load_reuters

    def build_model(self, vocab_size: int):
        keras = keras_flavour.api()
        layers = keras.layers

        return keras.Sequential(
            [
                keras.Input(shape=(SEQUENCE_LENGTH,), dtype="int32"),
                layers.Embedding(vocab_size, 7),
                layers.Conv1D(64, 5, activation="relu"),
                layers.MaxPooling1D(2),
                layers.Conv1D(32, 3, activation="relu"),
                layers.MaxPooling1D(2),
                layers.Flatten(),
                layers.Dense(NUM_CLASSES, activation="softmax"),
            ],
            name="reuters_cnn",
        )

    def loss(self, reduction="sum_over_batch_size"):
        keras = keras_flavour.api()

        return keras.losses.SparseCategoricalCrossentropy(reduction=keras_flavour.reduction(reduction))

    def metrics(self) -> list:
        keras = keras_flavour.api()

        return [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy"),
        ]

    def score(self, y_true: np.ndarray, y_prob: np.ndarray) -> dict[str, float]:
        top5 = np.argsort(-y_prob, axis=1)[:, :5]
        return {
            "accuracy": float(np.mean(np.argmax(y_prob, axis=1) == y_true)),
            "top5_accuracy": float(np.mean(np.any(top5 == y_true[:, None], axis=1))),
        }
