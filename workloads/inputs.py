"""A workload's examples, whatever their form: arrays (one input or a dict of named inputs)
or functions that build a ``tf.data.Dataset`` of unbatched ``(features, label)`` examples.

:class:`Data` is what the harness reads: the loops ask it for the training examples as a
dataset (and batch, shard and distribute them themselves), evaluation for the test
examples. :func:`normalize` turns what a workload's ``data()`` returns into one;
:func:`synthetic_for` makes examples of a model's own shapes (:mod:`distbench.workloads.model_check`
refuses data that does not fit the model). Child side (it reads
TensorFlow); nothing here knows a strategy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from distbench.core.errors import UserError

RETURNS = ("((x_train, y_train), (x_test, y_test)) with x an array or a dict of arrays, "
           "or (make_train, make_test): functions returning a tf.data.Dataset of unbatched (x, y) examples")


class Examples:
    """How the harness reads examples held as arrays (``x_train`` ... ``y_test``; x an
    array or a dict of named arrays) or as dataset functions (``train_fn``, ``test_fn``)."""

    train_fn: Callable | None = None
    test_fn: Callable | None = None

    @property
    def kind(self) -> str:
        return "tf.data" if self.train_fn is not None else "arrays"

    def examples(self, split: str) -> int | None:
        """How many examples ``split`` ("train" or "test") has (None: a dataset of unknown length)."""
        if self.kind == "arrays":
            return int(len(self.y_train if split == "train" else self.y_test))
        import tensorflow as tf

        known = self.__dict__.setdefault("_lengths", {})   # read eagerly once: inside a traced function it is symbolic
        if split not in known:
            n = tf.get_static_value(self.dataset(split).cardinality())
            if n is None:
                return None
            known[split] = None if n < 0 else int(n)   # INFINITE or UNKNOWN: None
        return known[split]

    @property
    def train_examples(self) -> int | None:
        return self.examples("train")

    def element_spec(self, split: str = "train"):
        """One example's ``(x, y)`` TensorSpecs (arrays: read from their shapes, without
        copying them into a dataset)."""
        import tensorflow as tf

        if self.kind == "tf.data":
            return self.dataset(split).element_spec
        pair = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        return tf.nest.map_structure(lambda a: tf.TensorSpec(a.shape[1:], tf.as_dtype(a.dtype)), pair)

    def fingerprint(self, splits: tuple[str, ...] = ("train", "test")) -> str | None:
        """A hash of the examples themselves: every array's values, dtype and shape, train
        and test (``splits``), features (by name) and labels. Two runs whose examples hash
        alike trained on the same data wherever it was read from, and two whose test
        examples hash alike (``("test",)``: the record's ``test_fingerprint``) measured their
        test metrics on the same examples; None for dataset functions (their examples are not
        read twice: :mod:`distbench.analysis.identity` then compares the source as given)."""
        if self.kind != "arrays":
            return None
        known = self.__dict__.setdefault("_fingerprints", {})
        if splits not in known:
            digest = hashlib.sha256()
            for name in (f"{xy}_{split}" for split in splits for xy in "xy"):
                part = getattr(self, name)
                columns = sorted(part.items()) if isinstance(part, dict) else [("", part)]
                for key, values in columns:
                    _digest_array(digest, f"{name}{'.' + key if key else ''}", np.asarray(values))
            known[splits] = digest.hexdigest()[:16]
        return known[splits]

    def first(self, n: int, split: str = "train"):
        """The first ``n`` examples of ``split`` as one batch ``(x, y)`` of tensors, as the loops
        give them (tf-keras's losses squeeze a tensor's labels, not an array's); arrays are
        sliced before they become tensors (not the whole split each call)."""
        import tensorflow as tf

        if self.kind == "tf.data":
            return next(iter(self.dataset(split).batch(n)))
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        x = {k: v[:n] for k, v in x.items()} if isinstance(x, dict) else x[:n]
        return tf.nest.map_structure(tf.convert_to_tensor, (x, y[:n]))

    def dataset(self, split: str):
        """A fresh ``tf.data.Dataset`` of ``split``'s unbatched ``(x, y)`` examples."""
        import tensorflow as tf

        if self.kind == "tf.data":
            return (self.train_fn if split == "train" else self.test_fn)()
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        return tf.data.Dataset.from_tensor_slices((x, y))


def _digest_array(digest, name: str, values: np.ndarray) -> None:
    digest.update(f"{name} {values.dtype.str} {values.shape}\n".encode())
    if values.dtype.hasobject:   # strings or mixed objects: their text (no buffer to read)
        digest.update(repr(values.tolist()).encode())
    else:
        digest.update(memoryview(np.ascontiguousarray(values)).cast("B"))


@dataclass
class Data(Examples):
    """Training and test examples: arrays, or functions each of whose calls returns a fresh
    ``tf.data.Dataset`` of unbatched ``(x, y)`` examples."""

    x_train: Any = None
    y_train: Any = None
    x_test: Any = None
    y_test: Any = None
    train_fn: Callable | None = None
    test_fn: Callable | None = None
    source: str = "workload"
    details: dict = field(default_factory=dict)

    def describe(self) -> dict:
        x_spec, y_spec = self.element_spec()
        return {"source": self.source, "kind": self.kind, "train_examples": self.examples("train"),
                "test_examples": self.examples("test"), "inputs": spec_text(x_spec), "labels": spec_text(y_spec),
                "fingerprint": self.fingerprint(), "test_fingerprint": self.fingerprint(("test",)), **self.details}


def spec_text(spec) -> Any:
    """A (nested) TensorSpec as plain JSON: ``"float32 (8, 8, 1)"`` or a dict of them."""
    if isinstance(spec, dict):
        return {k: spec_text(v) for k, v in spec.items()}
    return f"{spec.dtype.name} {tuple(spec.shape.as_list())}"


def normalize(found, workload: str, source: str) -> Data:
    """What ``workload``'s ``data(source, seed)`` returned, as :class:`Data` (UserError
    naming the accepted forms when it is none of them)."""
    if isinstance(found, Data):
        return found
    try:
        train, test = found
    except (TypeError, ValueError):
        train = test = None
    if callable(train) and callable(test):
        return Data(train_fn=train, test_fn=test, source=_source(source))
    if _pair(train) and _pair(test):
        (x_train, y_train), (x_test, y_test) = train, test
        if isinstance(y_train, dict) or isinstance(y_test, dict):
            keys = sorted(y_train if isinstance(y_train, dict) else y_test)
            # One key is one output, named: said so, not "several outputs"
            raise UserError(f"{workload}.data() returned labels keyed by {keys}: " + (
                f"give the label array itself, and a model whose output is one tensor, not a dict ({NAMED_OUTPUT})"
                if len(keys) == 1 else ONE_OUTPUT))
        data = Data(_arrays(x_train, workload), np.asarray(y_train), _arrays(x_test, workload), np.asarray(y_test),
                    source=_source(source))
        _check_lengths(data, workload)
        return data
    if any(isinstance(part, (tuple, list)) and len(part) == 3 for part in (train, test)):   # (x, y, w)
        raise UserError(f"{workload}.data() returned a split of 3 parts, as (x, y, sample_weight): sample weights "
                        f"are not taken (the loops weigh every example alike); expected {RETURNS}.")
    raise UserError(f"{workload}.data() returned {_what(found)}; expected {RETURNS}.")


def _source(source: str) -> str:
    if source == "synthetic":
        return "synthetic"
    return "workload" if source in ("auto", "keras") else f"workload:{source}"


def _pair(value) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2


def _arrays(x, workload: str):
    if isinstance(x, dict):
        return {k: np.asarray(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)) and len(x) > 1 and all(np.ndim(v) >= 1 for v in x) \
            and len({len(v) for v in x}) == 1 and len({np.shape(v)[1:] for v in x}) > 1:
        # A model of several inputs fed as a list (numpy's "inhomogeneous shape" had said so)
        raise UserError(f"{workload}.data() returned features as {_what(x)} of other shapes; give a model of "
                        "several inputs a dict keyed by its inputs' names, e.g. {'tokens': ..., 'numbers': ...}.")
    return np.asarray(x)


def _what(value) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} ({', '.join(type(v).__name__ for v in value)})"
    return f"a {type(value).__name__}"


def _check_lengths(data: Data, workload: str) -> None:
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        lengths = {k: len(v) for k, v in x.items()} if isinstance(x, dict) else {"x": len(x)}
        if any(n != len(y) for n in lengths.values()):
            rows = lengths if isinstance(x, dict) else lengths["x"]
            raise UserError(f"{workload}.data(): the {split} features have {rows} rows but the labels {len(y)}; "
                            "expected one label per example.")


# --- examples of a model's own shapes ---------------------------------------------------


def synthetic_for(model, loss, train: int, test: int, seed: int) -> Data:
    """Learnable examples of ``model``'s input and output shapes: float inputs standard
    normal, integer inputs below the vocabulary of the Embedding they feed (else 0-9);
    labels from a fixed random projection of the inputs, as ``loss`` expects them (class
    ids, 0/1, one-hot, or values)."""
    rng = np.random.default_rng(seed)
    names = [t.name for t in model.inputs]
    n = train + test
    columns = {name: _input_values(rng, model, t, n) for name, t in zip(names, model.inputs)}
    score = _projection(rng, columns, _output_units(model))
    labels = _labels(score, loss_name(loss), rng)
    x = columns if len(names) > 1 else columns[names[0]]
    cut = (lambda v, s: {k: a[s] for k, a in v.items()}) if isinstance(x, dict) else (lambda v, s: v[s])
    return Data(cut(x, slice(0, train)), labels[:train], cut(x, slice(train, n)), labels[train:], source="synthetic",
                details={"seed": seed, "derived_from": "the model's inputs and outputs"})


def _input_values(rng, model, tensor, n: int) -> np.ndarray:
    shape = (n, *[d or 1 for d in tensor.shape[1:]])
    dtype = np.dtype(getattr(tensor.dtype, "name", tensor.dtype))
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, _vocabulary(model, tensor), size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _vocabulary(model, tensor) -> int:
    """The input_dim of the Embedding that ``tensor`` feeds directly (10 when none does)."""
    for layer in model.layers:
        if type(layer).__name__ == "Embedding":
            inbound = getattr(layer, "input", None)
            if inbound is tensor or getattr(inbound, "name", None) == tensor.name:
                return int(layer.input_dim)
    return 10


def _output_units(model) -> int:
    return int(np.prod([d or 1 for d in model.outputs[0].shape[1:]]))


def _projection(rng, columns: dict, units: int) -> np.ndarray:
    flat = np.concatenate([v.reshape(len(v), -1).astype(np.float64) for v in columns.values()], axis=1)
    flat = (flat - flat.mean(axis=0)) / (flat.std(axis=0) + 1e-9)
    return flat @ rng.standard_normal((flat.shape[1], max(units, 1)))


def _labels(score: np.ndarray, loss: str, rng) -> np.ndarray:
    if "sparse" in loss:
        return np.argmax(score, axis=1).astype(np.int32)
    if "binary" in loss or "hinge" in loss:
        return (score > 0).astype(np.float32)
    if "categorical" in loss:
        return np.eye(score.shape[1], dtype=np.float32)[np.argmax(score, axis=1)]
    return (score + 0.1 * rng.standard_normal(score.shape)).astype(np.float32)


def loss_name(loss) -> str:
    if isinstance(loss, str):
        return loss.lower()
    fn = getattr(loss, "fn", None)
    return f"{type(loss).__name__} {getattr(fn, '__name__', '')} {getattr(loss, '__name__', '')}".lower()


# What distbench trains: one output, one label array (its loops, evaluation and guard read one).
NAMED_OUTPUT = "keras.Model(inputs, tensor), not keras.Model(inputs, {'name': tensor}); docs/own-model.md"
ONE_OUTPUT = ("models with several outputs are not supported; give a model with one output and one label per "
              "example (docs/own-model.md).")
