"""Does a workload's data fit its model: the checks a run makes before anything is timed.

:func:`check` refuses, in one line naming what was received and what is expected, a model
of several outputs, examples already batched, features that do not fit the model's inputs
(declared, or, for a subclassed model that declares none, its call on two examples) and
labels that do not fit its output and loss. Child side (it calls the model).
"""

from __future__ import annotations

import re

import numpy as np
from distbench.core.errors import UserError
from distbench.workloads.inputs import NAMED_OUTPUT, ONE_OUTPUT, Data, spec_text


def check(name: str, model, data: Data, loss) -> None:
    """Refuses, in one line naming what was received and what is expected, a model with
    several outputs, data whose examples are already batched, whose features do not fit the
    model's inputs, or whose labels do not fit its output and loss."""
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) > 1:
        raise UserError(f"{name}: the model has {len(outputs)} outputs: {ONE_OUTPUT}")
    named = _output_struct(model)
    if isinstance(named, dict):   # one output in a dict: the loops and metrics take a tensor
        raise UserError(f"{name}: the model's output is a dict keyed by {sorted(named)}; give a model whose output "
                        f"is one tensor ({NAMED_OUTPUT}).")
    for split in ("train", "test"):
        if data.examples(split) == 0:
            raise UserError(f"{name}: the {split} split has no examples; a cell trains on the train split and is "
                            "judged on the test split, so each needs at least one.")
        spec = data.element_spec(split)
        if isinstance(spec, tuple) and len(spec) == 3:   # a pipeline's (x, y, w)
            raise UserError(f"{name}: the {split} examples are (features, label, sample_weight) triples: sample "
                            "weights are not taken (the loops weigh every example alike); expected (features, "
                            "label) pairs.")
        if not (isinstance(spec, tuple) and len(spec) == 2):
            raise UserError(f"{name}: the {split} examples are {_spec_text_any(spec)}; expected (features, label) "
                            "pairs.")
        if declared_inputs(model) is None:   # a subclassed model: its call says whether they fit
            _one_output(name, called(name, model, data, split))
        else:
            _check_features(name, split, model, spec[0])
        _check_finite(name, split, data)
    _check_labels(name, model, data, loss)


def _one_output(name: str, output) -> None:
    """A subclassed model's output on two examples is one tensor (it declares none, and a
    tuple or dict had failed with "'tuple' object has no attribute 'shape'")."""
    if isinstance(output, dict) and len(output) == 1:
        raise UserError(f"{name}: the model's output is a dict keyed by {sorted(output)}; give a model whose output "
                        f"is one tensor ({NAMED_OUTPUT}).")
    if isinstance(output, (tuple, list)) and len(output) == 1:
        raise UserError(f"{name}: the model's call returns a {type(output).__name__} of one tensor; return the tensor "
                        "itself (the loops and metrics take one).")
    if isinstance(output, (dict, tuple, list)):
        raise UserError(f"{name}: the model's call returns {len(output)} outputs: {ONE_OUTPUT}")


def _output_struct(model):
    """The model's declared output as it is nested (a dict for ``{'name': tensor}``); None
    for a model that declares none (a subclassed one)."""
    try:
        return model.output
    except (AttributeError, ValueError):
        return None


def _check_finite(name: str, split: str, data: Data) -> None:
    """Arrays of NaN or infinite values (a pipeline's are seen only as it runs): every cell
    failed after training, as diverged, and the run was saved."""
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    columns = {**(x if isinstance(x, dict) else {"features": x}), "labels": y}
    for what, values in columns.items():
        values = np.asarray(values) if values is not None else None
        if values is None or values.dtype.kind not in "fc" or np.isfinite(values).all():
            continue
        rows = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
        raise UserError(f"{name}: {len(rows):,} of the {len(values):,} {split} examples' {what} "
                        f"{'holds' if len(rows) == 1 else 'hold'} NaN or infinite "
                        f"values (row {rows[0]} the first); give finite numbers (a model trained on them diverges).")


def declared_inputs(model) -> list | None:
    """``model``'s input tensors, or None when it declares none (a subclassed ``keras.Model``,
    which Keras 3 gives no ``inputs`` even once it is built or called)."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    return list(inputs) if inputs else None


def called(name: str, model, data: Data, split: str = "train"):
    """``model``'s output on two ``split`` examples (a model that declares no inputs is built
    by it); UserError naming the failure, in one line, when the model cannot take them."""
    x, _ = data.first(2, split)
    try:
        return model(x, training=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises ValueError, TF InvalidArgumentError
        first = first_line(exc)
        raise UserError(f"{name}: the model declares no inputs (a subclassed keras.Model), and calling it on two "
                        f"{split} examples ({_spec_text_any(data.element_spec(split)[0])}) failed: {first}") from None


def _spec_text_any(spec) -> str:
    try:
        return str(spec_text(spec))
    except AttributeError:
        return repr(spec)


def _check_features(name: str, split: str, model, spec) -> None:
    inputs = {t.name: t for t in model.inputs}
    if isinstance(spec, dict):
        if set(spec) != set(inputs):
            raise UserError(f"{name}: the {split} features are named {sorted(spec)}; the model's inputs are "
                            f"{sorted(inputs)}.")
        pairs = [(spec[k], inputs[k], f"input {k!r}") for k in spec]
    elif len(inputs) == 1:
        (tensor,) = inputs.values()
        pairs = [(spec, tensor, "examples")]
    else:
        raise UserError(f"{name}: the {split} features are one {spec_text(spec)}; the model has {len(inputs)} "
                        f"inputs, expected a dict keyed by {sorted(inputs)}.")
    for found, tensor, key in pairs:
        _check_shape(name, split, found, tensor, key)


def _check_shape(name: str, split: str, found, tensor, what: str) -> None:
    want = list(tensor.shape[1:])
    got = found.shape.as_list()
    what = f"{name}: the {split} {what} have shape {tuple(got)}"
    if len(got) == len(want) + 1 and _fits(got[1:], want):
        raise UserError(f"{what}: already batched; give unbatched examples of shape {tuple(want)} (distbench "
                        "batches to the global batch itself).")
    if len(got) != len(want) or not _fits(got, want):
        raise UserError(f"{what}; the model expects {tuple(want)} per example.")


def _fits(got: list, want: list) -> bool:
    return all(g is None or w is None or g == w for g, w in zip(got, want))


def _check_labels(name: str, model, data: Data, loss) -> None:
    # Digits as text pass the loss below as NumPy labels ('6' is cast to 6.0); tf.data's string
    # tensor of them failed every cell mid-training.
    for split, y in (("train", data.y_train), ("test", data.y_test)):
        if y is not None and np.asarray(y).dtype.kind in "US":
            raise UserError(f"{name}: the {split} labels are text (such as {np.asarray(y).flat[0].item()!r}), "
                            "which tf.data cannot cast to numbers mid-run; give numbers, e.g. y.astype(int) for "
                            "class ids.")
    _check_class_ids(name, model, data, _classifies(loss))
    x, y = data.first(2)
    try:
        pred = model(x, training=False)
        value = loss(y, pred)
        float(np.mean(np.asarray(value)))
    except Exception as exc:  # noqa: BLE001 - Keras raises ValueError, TF InvalidArgumentError
        first = first_line(exc)
        whose = "labels" if not data.details.get("derived_from") else (
            f"distbench's synthetic labels (made in the form the loss's name, {_named(loss)!r}, says: 'sparse' class "
            "ids, 'binary' or 'hinge' 0/1, 'categorical' one-hot, else values to regress)")
        raise UserError(f"{name}: {whose} of shape {tuple(y.shape[1:])} ({y.dtype.name}) do not fit the model's "
                        f"output {_output_shape(model, x)} under {type(loss).__name__}: {first}"
                        + ("; give the workload a synthetic(seed) of its own" if whose != "labels" else "")) from None


def first_line(exc: Exception) -> str:
    """The first line of ``exc`` that says what went wrong: Keras wraps a layer's error in
    "Exception encountered when calling X.call()." and ANSI bold, TensorFlow an op's in
    ``{{function_node ...}}``."""
    lines = [re.sub(r"\x1b\[[0-9;]*m|\{\{function_node [^}]*\}\}", "", line).strip() for line in str(exc).splitlines()]
    said = [line for line in lines if line and not line.startswith("Exception encountered when calling")]
    return said[0] if said else type(exc).__name__


def _named(loss) -> str:
    return getattr(loss, "__name__", None) or getattr(loss, "name", None) or type(loss).__name__


def _output_shape(model, x) -> tuple:
    """The shape of one example's output: declared, or of a call on ``x``."""
    outputs = getattr(model, "outputs", None)
    return tuple((outputs[0] if outputs else model(x, training=False)).shape[1:])


def _classifies(loss) -> bool:
    """Whether ``loss`` takes class ids or one-hot labels (a cross-entropy), by its names."""
    names = (type(loss).__name__, getattr(loss, "name", ""), getattr(getattr(loss, "fn", None), "__name__", ""),
             getattr(loss, "__name__", ""))
    return any("crossentropy" in str(n).lower() for n in names)


def _check_class_ids(name: str, model, data: Data, classifies: bool = True) -> None:
    """Labels, one per example, for a model of K > 1 outputs are class ids: each must be a
    whole number (an integer, or a float that holds one) in 0..K-1 (checked over every
    array label; the loss on two examples sees two of them, a float label such as 0.5 is
    taken without an error and trains nothing, and TensorFlow's own error, mid-training, is
    cut before it names the range)."""
    shape = _output_shape(model, data.first(2)[0])
    width = shape[-1] if shape else None
    for split, y in (("train", data.y_train), ("test", data.y_test)):
        if y is None or width is None or width < 2 or not np.issubdtype(np.asarray(y).dtype, np.number):
            continue
        y = np.asarray(y)
        if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1) or not len(y):
            continue
        odd = y[~np.isfinite(y) | (np.mod(y, 1) != 0)] if np.issubdtype(y.dtype, np.floating) else y[:0]
        if odd.size:
            raise UserError(f"{name}: {odd.size:,} of the {split} labels {'is' if odd.size == 1 else 'are'} not a whole "
                            f"number (such as {odd.flat[0].item()!r}); the model's output has {width} classes, so a "
                            f"label is a class id, 0 to {width - 1}.")
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= width:
            hint = "" if classifies else f" (values to regress, one per example, want an output of one unit, not {width})"
            raise UserError(f"{name}: the {split} labels run from {low} to {high}; the model's output has {width} "
                            f"classes, so a class id must be 0 to {width - 1}{hint}.")
