"""distbench's public API for your own workloads, strategies and loops.

    from distbench import TextClassifier

    class Sentiment(TextClassifier):
        name = "sentiment"
        vocab_size, num_classes, sequence_length = 5000, 2, 200

        def build_model(self, vocab_size):
            ...  # a fresh, built keras.Model

Select it with ``--workload path/to/file.py:Sentiment`` (or ``module:Sentiment``), list it
under ``workloads`` in ``[tool.distbench]``, or publish it as an entry point in the group
``distbench.workloads``. The protocol: docs/own-model.md.
"""

from bench.loops.base import LoopResult, TrainConfig, TrainContext, TrainingLoop
from strategies.base import Availability, StrategyAdapter
from workloads.base import TextClassifier, TextWorkload
from workloads.data import SyntheticSpec, TextData

__all__ = [
    "Availability", "LoopResult", "StrategyAdapter", "SyntheticSpec", "TextClassifier", "TextData",
    "TextWorkload", "TrainConfig", "TrainContext", "TrainingLoop",
]
