"""Which Keras a cell trains with: Keras 3 or tf-keras (Keras 2).

Since TensorFlow 2.16, ``tf.keras`` is Keras 3. ``TF_USE_LEGACY_KERAS=1``, read when
TensorFlow first resolves ``tf.keras``, makes it tf-keras instead (the ``tf-keras``
package, pinned by its own metadata to TensorFlow's minor version). That is once per
process, so a tf_keras cell runs in a process started with the variable set: its own
fork server or a fresh interpreter (distbench.launchers.process), never a forked child
that sets it late. Many teams that train on several machines stay on tf-keras because
Keras 3 does not work with MultiWorkerMirroredStrategy (keras-team/keras#20585).

Workers call :func:`api` for the Keras module their cell runs with; the small helpers
below cover the spellings that differ between the two. Nothing here imports TensorFlow
at module level: the parent uses :func:`environment` and :func:`missing` only.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os

from distbench.core.errors import UserError

FLAVOURS = ("keras3", "tf_keras")
ENV = "TF_USE_LEGACY_KERAS"


def check(flavour: str) -> str:
    """``flavour`` if it is one; otherwise a UserError naming the valid ones."""
    if flavour not in FLAVOURS:
        raise UserError(f"Unknown Keras {flavour!r}. Known: {', '.join(FLAVOURS)}.")
    return flavour


def asked_by_shell(environ=None) -> bool:
    """Whether the environment asks for tf-keras as TensorFlow reads it (``TF_USE_LEGACY_KERAS``
    of ``true``, ``True`` or ``1``): a run that names no flavour then trains with tf-keras
    (it ran Keras 3, and said nothing, for users following TensorFlow's own advice)."""
    return (os.environ if environ is None else environ).get(ENV) in ("true", "True", "1")


def environment(flavour: str) -> dict[str, str]:
    """The variable a worker of ``flavour`` starts with (explicit both ways, so that a
    ``TF_USE_LEGACY_KERAS`` in the user's shell cannot turn a keras3 cell into Keras 2)."""
    return {ENV: "1" if flavour == "tf_keras" else "0"}


def missing(flavour: str) -> str | None:
    """Why ``flavour`` cannot run in this environment (with the line that installs it), or None."""
    if flavour != "tf_keras" or importlib.util.find_spec("tf_keras") is not None:
        return None
    try:
        major, minor = importlib.metadata.version("tensorflow").split(".")[:2]
        pin = f"'tf-keras~={major}.{minor}.0'"
    except importlib.metadata.PackageNotFoundError:
        pin = "tf-keras"
    return f"tf_keras: the tf-keras package is not installed; pip install {pin}"


def current() -> str:
    """The flavour this process's TensorFlow resolved ``tf.keras`` to (read from the module
    itself, not from the variable: what took effect)."""
    return "tf_keras" if api().__name__.startswith("tf_keras") else "keras3"


def api():
    """The Keras module of this process: ``tf.keras`` (Keras 3, or tf-keras under
    ``TF_USE_LEGACY_KERAS=1``). Models, layers, losses and callbacks of one cell all come
    from it."""
    import tensorflow as tf

    return tf.keras


def package() -> dict:
    """What the record names: the flavour, its package and version."""
    if current() == "tf_keras":
        import tf_keras

        return {"flavour": "tf_keras", "package": "tf-keras", "version": tf_keras.__version__}
    import keras

    return {"flavour": "keras3", "package": "keras", "version": keras.__version__}


def reduction(value: str | None) -> str:
    """A loss's ``reduction`` in this flavour's spelling (Keras 3: None for per-example
    losses; Keras 2: ``"none"``)."""
    if value is None or value == "none":
        return "none" if current() == "tf_keras" else None
    return value


def labels_like(y, pred):
    """Labels as the flavour's compiled loss hands them to a loss. Keras 2 gives labels
    ``(batch,)`` beside an output ``(batch, k)`` a last axis, and the output's dtype when
    both are floats or both integers (tf-keras's ``match_dtype_and_rank``): its losses
    otherwise squeeze the prediction and average over its last axis, which turns
    ``reduction="none"`` into one number per batch. Keras 3 passes them as they are: its
    wrapped losses align ranks themselves, and a ``keras.losses.Loss`` subclass's own
    ``call`` gets them raw (the custom loop had given it labels ``(batch, 1)`` and trained
    another model than fit)."""
    import tensorflow as tf

    if current() != "tf_keras":
        return y
    if y.shape.rank == 1 and pred.shape.rank == 2:
        y = tf.expand_dims(y, -1)
    if y.dtype != pred.dtype and (y.dtype.is_floating and pred.dtype.is_floating
                                  or y.dtype.is_integer and pred.dtype.is_integer):
        y = tf.cast(y, pred.dtype)
    return y


def per_example(loss_fn, y, pred, summed: bool = False):
    """One loss value per example: ``loss_fn`` (a Keras loss of reduction None, or a function
    with ranks aligned) on labels as fit gives them (:func:`labels_like`). A loss of several values per example
    (one per pixel, time step or output unit: a segmentation or sequence model's) has them
    averaged, as Keras's own reduction averages every value (``summed``: a loss of
    ``reduction="sum"``, which sums them); they had been summed, and then averaged over the
    batch alone (a 64-pixel mask trained the custom loop at 64 times fit's loss)."""
    import tensorflow as tf

    values = loss_fn(labels_like(y, pred), pred)
    rank = values.shape.rank
    if rank is not None and rank > 1:
        axes = list(range(1, rank))
        values = tf.reduce_sum(values, axis=axes) if summed else tf.reduce_mean(values, axis=axes)
    return values


def sums(loss) -> bool:
    """Whether the Keras loss object ``loss`` sums its values (``reduction="sum"``) where the
    others average them; a function or a loss's name averages, as compile does."""
    return str(getattr(loss, "reduction", "")).lower() == "sum"


def same_rank(loss_fn):
    """``loss_fn`` (a loss function, ``y_true, y_pred`` -> one value per example) called with
    labels and outputs of the same rank, as Keras's compile wraps a function or a loss's name:
    labels ``(N,)`` beside a ``Dense(1)`` output ``(N, 1)`` get its last axis (called bare,
    ``binary_crossentropy`` refused them, though fit trains on them), an output's extra axis
    of 1 is squeezed otherwise."""
    import tensorflow as tf

    def aligned(y_true, y_pred):
        true_rank, pred_rank = y_true.shape.rank, y_pred.shape.rank
        if true_rank is not None and pred_rank is not None:
            if pred_rank == true_rank + 1 and y_pred.shape[-1] == 1:
                y_true = tf.expand_dims(y_true, -1) if true_rank == 1 else y_true
                y_pred = y_pred if true_rank == 1 else tf.squeeze(y_pred, -1)
            elif true_rank == pred_rank + 1 and y_true.shape[-1] == 1:
                y_pred = tf.expand_dims(y_pred, -1) if pred_rank == 1 else y_pred
                y_true = y_true if pred_rank == 1 else tf.squeeze(y_true, -1)
        return loss_fn(y_true, y_pred)

    aligned.__name__ = getattr(loss_fn, "__name__", "loss")
    return aligned


def to_float(value) -> float:
    """A scalar variable or tensor of either flavour (a Keras 3 variable, a tf.Variable, a
    MirroredVariable) as a Python float."""
    import tensorflow as tf

    return float(tf.convert_to_tensor(value).numpy())


def steps_per_execution(model) -> int:
    """What a compiled model runs per execution (Keras 3: an int; Keras 2: a variable)."""
    value = getattr(model, "steps_per_execution", None)
    if value is None:
        value = getattr(model, "_steps_per_execution", None)
    return int(to_float(value)) if value is not None else 1


def own_train_step(model) -> type | None:
    """The class of ``model`` that defines its own ``train_step`` (a GAN's, a custom loss's),
    None when its training step is Keras's own."""
    own = next((c for c in type(model).__mro__ if "train_step" in vars(c)), None)
    if own is None or own.__module__.split(".")[0] in ("keras", "tf_keras", "tensorflow"):
        return None
    return own
