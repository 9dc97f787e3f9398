"""A regression MLP on a table with two named inputs, fed by a tf.data pipeline.

The data is scikit-learn's bundled diabetes table (442 patients, 10 standardised
features, a disease-progression score from 25 to 346): it ships with scikit-learn, so
the example runs offline. The model reads two inputs by name (demographics and blood
measurements), and data() returns functions that build tf.data pipelines of unbatched
examples: distbench batches them to the global batch and shards them under each
strategy. The guard watches the test MAE, for which lower is better.
"""

import numpy as np

import distbench
from distbench import Workload

DEMOGRAPHICS = [0, 1]              # age, sex
BLOOD = [2, 3, 4, 5, 6, 7, 8, 9]   # bmi, blood pressure, six serum measurements


class Diabetes(Workload):
    name = "diabetes"
    summary = "two-input MLP (2 + 8 features -> 64 -> 32 -> 1), MSE, on scikit-learn's diabetes table"
    guard_metric = "mae"                              # lower is better (read from its name)
    default_targets = {"auto": "mae<=50"}
    keras_flavours = ("keras3", "tf_keras")

    def build_model(self):
        keras = distbench.keras_api()
        layers = keras.layers

        demographics = keras.Input(shape=(len(DEMOGRAPHICS),), name="demographics")
        blood = keras.Input(shape=(len(BLOOD),), name="blood")
        x = layers.Concatenate()([demographics, blood])
        x = layers.Dense(64, activation="relu")(x)
        x = layers.Dense(32, activation="relu")(x)
        return keras.Model({"demographics": demographics, "blood": blood}, layers.Dense(1)(x), name=self.name)

    def data(self, source, seed):
        """Two functions, each building a tf.data pipeline of (features by name, score)."""
        from sklearn.datasets import load_diabetes

        table = load_diabetes()
        x, y = table.data.astype(np.float32), table.target.astype(np.float32)
        order = np.random.default_rng(seed).permutation(len(y))
        cut = int(0.8 * len(y))

        def pipeline(rows):
            def make():
                import tensorflow as tf

                features = {"demographics": x[rows][:, DEMOGRAPHICS], "blood": x[rows][:, BLOOD]}
                return tf.data.Dataset.from_tensor_slices((features, y[rows]))
            return make

        return pipeline(order[:cut]), pipeline(order[cut:])

    def loss(self):
        return distbench.keras_api().losses.MeanSquaredError()

    def metrics(self):
        return [distbench.keras_api().metrics.MeanAbsoluteError(name="mae")]

    def optimizer(self):
        return distbench.keras_api().optimizers.Adam(learning_rate=0.01)
