"""A small Keras sentiment model of your own, benchmarked by distbench.

distbench needs four things from it: a name, the vocabulary size, the number of classes
(and the sequence length), and a function that builds a fresh Keras model. Loss, metrics,
optimizer and data loading come from ``TextClassifier``; override any of them.
"""

import distbench
from distbench import TextClassifier


class TinySentiment(TextClassifier):
    name = "tiny_sentiment"
    summary = "Embedding(5000, 16) -> GlobalAveragePooling1D -> Dense(16) -> Dense(1): a bag of words"
    vocab_size = 5000
    num_classes = 2
    sequence_length = 100
    default_targets = {"synthetic": "auc=0.8"}   # for --target default on synthetic data
    # Built from distbench.keras_api() (the cell's tf.keras), so it runs under Keras 3 and
    # under tf-keras (--keras tf_keras); a model built with `import keras` is Keras 3 only.
    keras_flavours = ("keras3", "tf_keras")

    def build_model(self, vocab_size: int):
        keras = distbench.keras_api()
        layers = keras.layers

        return keras.Sequential(
            [
                keras.Input(shape=(self.sequence_length,), dtype="int32"),
                layers.Embedding(vocab_size, 16),
                layers.GlobalAveragePooling1D(),
                layers.Dense(16, activation="relu"),
                layers.Dense(1, activation="sigmoid"),
            ],
            name=self.name,
        )
