"""Child side: Keras's own imports of scikit-learn and matplotlib refused in a worker (stdlib only).

Keras 3, when it is imported (``import tensorflow`` imports it as ``tf.keras``), imports
scikit-learn (for its wrappers, ``keras.wrappers``, which bring SciPy's statistics) and
matplotlib.pyplot (for its image-gallery plots, ``keras.visualization``) whenever they are
installed, as they are beside distbench (matplotlib draws its reports; the example projects
read scikit-learn's data). A training cell never uses either, yet every worker paid for
them: ``import tensorflow`` and ``tf.keras.layers`` took 5.3-9.0 s here with them and
3.5-4.4 s without (five alternations, Keras 3.15, nothing else running).

:func:`refuse` makes an import of either library fail while Keras's own code asks for it,
as if it were not installed; Keras catches that and leaves those two features out. So in a
worker ``keras.wrappers.SKLearnClassifier`` and ``keras.visualization`` plots say that
scikit-learn or matplotlib is missing. A workload's own imports of them (scikit-learn's
data in ``data()``) work as ever. tf-keras does not import them; nothing else changes.

(A lazy import of Keras's modules instead, ``importlib.util.LazyLoader``, was tried and
dropped: ``inspect.getmodule``, which tracing a step calls, reads every loaded module's
``__file__`` and so loaded both in every forked worker, inside its cell.)

The fork server (:mod:`distbench.scenarios.forkserver`) loads this file by its path before
it imports TensorFlow, so it must import nothing of distbench; an exec'd worker calls it
first thing (:mod:`distbench.worker`).
"""

from __future__ import annotations

import importlib.abc
import sys

REFUSED = frozenset({"sklearn", "matplotlib"})
_IMPORT_MACHINERY = ("importlib", "_frozen_importlib")


class _Refuser(importlib.abc.MetaPathFinder):
    """Fails the import of a :data:`REFUSED` package when the code importing it is Keras's."""

    distbench_keras_extras = True   # one per process, whichever copy of this file installed it

    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in REFUSED and _importer().startswith("keras."):
            raise ModuleNotFoundError(f"distbench's worker leaves {name} out of Keras's own imports", name=name)
        return None


def _importer() -> str:
    """The module whose code is importing: the first frame outside the import machinery."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(_IMPORT_MACHINERY):
        frame = frame.f_back
    return frame.f_globals.get("__name__", "") if frame is not None else ""


def refuse() -> None:
    """From now on, this process refuses Keras's own imports of :data:`REFUSED` (once per process)."""
    if not any(getattr(finder, "distbench_keras_extras", False) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Refuser())
