"""Child side: Keras's optional integrations loaded when first used, not with TensorFlow (stdlib only).

Keras 3, when it is imported (``import tensorflow`` imports it as ``tf.keras``), imports
its scikit-learn wrappers (``keras.wrappers``, which import scikit-learn and SciPy's
statistics) and its image-gallery plots (``keras.visualization``, which import
matplotlib.pyplot) whenever those libraries are installed, as they are beside distbench
(matplotlib draws its reports; the example projects use scikit-learn's data). A training
cell never touches them, yet every worker paid for them: here ``import tensorflow`` and
``tf.keras.layers`` took 5.3-6.4 s with them and 4.3-4.9 s without (six alternations on a
quiet machine, Keras 3.15), about a quarter of a worker's start.

:func:`defer` makes exactly those Keras modules lazy (:class:`importlib.util.LazyLoader`):
each is a module whose code runs at its first attribute access, so
``keras.wrappers.SKLearnClassifier`` and ``keras.visualization.plot_image_gallery`` still
work in a worker, at their cost then. Nothing else changes: tf-keras, other libraries, and
a Keras whose layout has no such module are imported as ever. One consequence: a user's
module that imports matplotlib itself now does so during its cell, so a ``matplotlibrc``
in the working folder counts among the files the cell read (:mod:`distbench.trackers.reads`).

The fork server (:mod:`distbench.scenarios.forkserver`) loads this file by its path before
it imports TensorFlow, so it must import nothing of distbench; an exec'd worker calls it
first thing (:mod:`distbench.worker`).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys

# Keras 3's modules that import them: its public API's (as ``keras`` and as ``tf.keras``) and
# its implementation's, which the public ones re-export from.
DEFERRED = frozenset(f"{prefix}.{name}" for prefix in ("keras", "keras._tf_keras.keras", "keras.src")
                     for name in ("wrappers", "visualization"))


class _Deferred(importlib.abc.MetaPathFinder):
    """Finds the :data:`DEFERRED` modules as the path finder does, with a lazy loader."""

    distbench_keras_extras = True   # one per process, whichever copy of this file installed it

    def find_spec(self, name, path, target=None):
        if name not in DEFERRED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def defer() -> None:
    """From now on, this process imports :data:`DEFERRED` lazily (once per process)."""
    if not any(getattr(finder, "distbench_keras_extras", False) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Deferred())
