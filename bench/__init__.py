"""distbench's public API for your own workloads, strategies and loops.

    from distbench import Workload

    class Digits(Workload):
        name = "digits"

        def build_model(self):
            ...  # a fresh, built keras.Model

        def data(self, source, seed):
            return (x_train, y_train), (x_test, y_test)   # or tf.data functions

        def loss(self):
            ...  # a Keras loss

Select it with ``--workload path/to/file.py:Sentiment`` (or ``module:Sentiment``), list it
under ``workloads`` in ``[tool.distbench]``, or publish it as an entry point in the group
``distbench.workloads``. The protocol: docs/own-model.md.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("distbench")
except PackageNotFoundError:   # run from a source tree that is not installed (check --against's worktree)
    __version__ = "0+unknown"

# The public names, imported when first used: ``import distbench`` (which the pytest
# plugin's entry point does in every pytest run of the environment) stays cheap.
_PUBLIC = {
    "LoopResult": "distbench.loops.base", "TrainConfig": "distbench.loops.base",
    "TrainContext": "distbench.loops.base", "TrainingLoop": "distbench.loops.base",
    "Availability": "distbench.strategies.base", "StrategyAdapter": "distbench.strategies.base",
    "Workload": "distbench.workloads.protocol", "Data": "distbench.workloads.inputs",
    "TextClassifier": "distbench.workloads.base", "TextWorkload": "distbench.workloads.base",
    "SyntheticSpec": "distbench.workloads.data", "TextData": "distbench.workloads.data",
    "keras_api": "distbench.core.keras_flavour",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name == "keras_api":   # the Keras module of the cell's process (Keras 3 or tf-keras)
        return import_module(_PUBLIC[name]).api
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'distbench' has no attribute {name!r}")
