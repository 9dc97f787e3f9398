"""A small Conv2D classifier of handwritten digits, benchmarked by distbench.

The data is scikit-learn's bundled copy of the UCI 8x8 digits (1,797 images, 10 classes):
it ships with scikit-learn, so the example runs offline. distbench needs the model, the
data, the loss and the metrics; it batches, shards and distributes the examples itself.
"""

import numpy as np

import distbench
from distbench import Workload


class Digits(Workload):
    name = "digits"
    summary = "Conv2D(16) -> Conv2D(32) -> Dense(10) on scikit-learn's 8x8 digits"
    guard_metric = "accuracy"
    default_targets = {"auto": "accuracy=0.9"}       # --target default on the digits
    # Built from distbench.keras_api() (the cell's tf.keras): Keras 3, and tf-keras too.
    keras_flavours = ("keras3", "tf_keras")

    def build_model(self):
        keras = distbench.keras_api()
        layers = keras.layers

        return keras.Sequential(
            [
                keras.Input(shape=(8, 8, 1)),
                layers.Conv2D(16, 3, padding="same", activation="relu"),
                layers.Conv2D(32, 3, activation="relu"),
                layers.Flatten(),
                layers.Dense(10, activation="softmax"),
            ],
            name=self.name,
        )

    def data(self, source, seed):
        """The digits as images scaled to [0, 1], 80% train and 20% test, split by ``seed``."""
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = (digits.images / 16.0).astype(np.float32)[..., None]     # (1797, 8, 8, 1)
        y = digits.target.astype(np.int32)
        order = np.random.default_rng(seed).permutation(len(y))
        cut = int(0.8 * len(y))
        train, test = order[:cut], order[cut:]
        return (x[train], y[train]), (x[test], y[test])

    def loss(self):
        return distbench.keras_api().losses.SparseCategoricalCrossentropy()

    def metrics(self):
        return [distbench.keras_api().metrics.SparseCategoricalAccuracy(name="accuracy")]
