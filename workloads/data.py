"""Where a text workload's examples come from: Keras's dataset, synthetic, or a folder.

Offline-first. ``auto`` tries the real Keras loader (it works from a cached file or a
download) and falls back to deterministic synthetic data of the same shapes, saying so
once. Every :class:`TextData` carries its ``source`` so that numbers from different data
are never compared as equals.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from distbench.core import cache
from distbench.core.errors import UserError
from distbench.workloads.inputs import Examples

log = logging.getLogger(__name__)

SEQUENCE_LENGTH = 300          # the default; a workload may set its own (multibranch: 200)
NAMED_SOURCES = ("auto", "keras", "synthetic")

KerasLoader = Callable[[], tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]]


@dataclass
class TextData(Examples):
    """Integer token sequences (one length per workload) and integer labels, split train/test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str                   # "keras", "synthetic" or "folder:<absolute path>"
    vocab_size: int
    num_classes: int
    details: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {
            "source": self.source,
            "train_examples": int(len(self.y_train)),
            "test_examples": int(len(self.y_test)),
            "vocab_size": self.vocab_size,
            "num_classes": self.num_classes,
            "sequence_length": int(self.x_train.shape[1]),
            "majority_class_share": self.majority_share,
            "fingerprint": self.fingerprint(), "test_fingerprint": self.fingerprint(("test",)),
            **self.details,
        }

    @property
    def majority_share(self) -> float:
        """The test accuracy of always answering the commonest class (of the test set)."""
        counts = np.bincount(np.asarray(self.y_test, dtype=np.int64).reshape(-1))
        return round(float(counts.max() / counts.sum()), 4) if counts.size else 0.0


@dataclass(frozen=True)
class SyntheticSpec:
    """The shapes and difficulty of a synthetic stand-in for a Keras text dataset.

    Each class owns ``signature_tokens`` token ids; every position of a document is one
    of its class's signature tokens with probability ``signal``, otherwise a background
    token drawn log-uniformly (a rough Zipf law). Class priors follow ``k ** -skew``.
    """

    train_examples: int
    test_examples: int
    vocab_size: int
    num_classes: int
    skew: float = 0.0
    mean_length: int = 150
    signal: float = 0.05
    signature_tokens: int = 10
    sequence_length: int = SEQUENCE_LENGTH


# Token ids 0-2 are reserved as in keras.datasets (padding, start, out-of-vocabulary).
_FIRST_WORD_ID = 3


def synthetic(spec: SyntheticSpec, seed: int) -> TextData:
    """Deterministic, learnable synthetic data of the given shapes (cached on disk: see
    :func:`_cached`; generating the IMDB-shaped set takes about 0.9 s per cell)."""
    return _cached(spec, seed) or _generate(spec, seed)


def _cache_path(spec: SyntheticSpec, seed: int) -> str | None:
    """Where ``spec`` and ``seed``'s data is cached: keyed by them and by this module's
    generator source, so that a changed generator never reads an old file. None when the
    cache is off (``DISTBENCH_CACHE=off``)."""
    import inspect

    source = inspect.getsource(_generate) + inspect.getsource(_documents) + repr(spec) + f"{seed}"
    return cache.path("synthetic", source, ".npz")


def _cached(spec: SyntheticSpec, seed: int) -> TextData | None:
    """The cached data, written atomically on first use (a cache that cannot be written
    or read is only skipped: the data is then generated, as without it)."""
    path = _cache_path(spec, seed)
    if path is None:
        return None
    try:
        with np.load(path) as f:
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        return TextData(**arrays, source="synthetic", vocab_size=spec.vocab_size, num_classes=spec.num_classes,
                        details=_details(spec, seed))
    except (OSError, KeyError, ValueError):
        pass
    data = _generate(spec, seed)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp.npz"
        np.savez(tmp, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test)
        os.replace(tmp, path)
    except OSError:
        pass
    return data


def _details(spec: SyntheticSpec, seed: int) -> dict:
    return {"seed": seed}


def _generate(spec: SyntheticSpec, seed: int) -> TextData:
    rng = np.random.default_rng(seed)
    n_sig = spec.num_classes * spec.signature_tokens
    # Signatures come from the rarer half of the vocabulary, one disjoint set per class.
    pool = np.arange(spec.vocab_size // 2, spec.vocab_size)
    signatures = rng.choice(pool, size=n_sig, replace=False).reshape(spec.num_classes, -1)
    priors = np.arange(1, spec.num_classes + 1, dtype=np.float64) ** -spec.skew
    priors /= priors.sum()
    train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    x_train, y_train = _documents(train_rng, spec, signatures, priors, spec.train_examples)
    x_test, y_test = _documents(test_rng, spec, signatures, priors, spec.test_examples)
    return TextData(x_train, y_train, x_test, y_test, "synthetic", spec.vocab_size, spec.num_classes,
                    details=_details(spec, seed))


def _documents(rng, spec: SyntheticSpec, signatures, priors, n: int):
    labels = rng.choice(spec.num_classes, size=n, p=priors).astype(np.int32)
    length = spec.sequence_length
    lengths = np.clip(rng.lognormal(math.log(spec.mean_length), 0.6, n), 20, length)
    u = rng.random((n, length), dtype=np.float32)
    span = spec.vocab_size - _FIRST_WORD_ID
    tokens = (np.exp(u * math.log(span)) - 1).astype(np.int32) + _FIRST_WORD_ID
    picks = rng.integers(0, signatures.shape[1], (n, length))
    is_signal = rng.random((n, length), dtype=np.float32) < spec.signal
    tokens = np.where(is_signal, signatures[labels[:, None], picks], tokens)
    # Pre-padding with zeros, as keras.utils.pad_sequences does by default.
    valid = np.arange(length)[None, :] >= length - lengths.astype(int)[:, None]
    return np.where(valid, tokens, 0).astype(np.int32), labels


def from_keras(loader: KerasLoader, vocab_size: int, num_classes: int,
               sequence_length: int = SEQUENCE_LENGTH) -> TextData:
    """Loads a ``keras.datasets`` set and pads/truncates it to ``sequence_length`` tokens."""
    from keras.utils import pad_sequences

    (x_train, y_train), (x_test, y_test) = loader()

    def pad(x):
        return pad_sequences(x, maxlen=sequence_length).astype(np.int32)

    return TextData(
        pad(x_train), y_train.astype(np.int32), pad(x_test), y_test.astype(np.int32),
        "keras", vocab_size, num_classes,
    )


@dataclass(frozen=True)
class FolderLayout:
    """A data folder as read: ``flat`` or ``split`` (:data:`LAYOUTS`)."""

    root: str
    kind: str                          # "flat" | "split"
    classes: tuple[str, ...]
    ignored: tuple[str, ...] = ()      # sub-folders that are not classes of both splits (aclImdb's train/unsup)


LAYOUTS = ("one sub-folder of .txt files per class (split 80/20 here with the seed)",
           "train/ and test/, each with the same class sub-folders of .txt files (the given split is used)")


def folder_layout(path: str) -> FolderLayout:
    """Reads and checks a data folder's layout (no TensorFlow): UserError naming both
    layouts it accepts when it is neither. Called before any worker starts."""
    root = os.path.abspath(path)
    subfolders = _subfolders(root)
    if {"train", "test"} <= set(subfolders):
        train, test = _subfolders(os.path.join(root, "train")), _subfolders(os.path.join(root, "test"))
        classes = [c for c in test if c in train]
        _check_classes([os.path.join(root, split, c) for split in ("train", "test") for c in classes],
                       f"{root} has train/ and test/, but they share {len(classes)} class sub-folder(s)",
                       "train/ + test/")
        ignored = [f"train/{c}" for c in train if c not in classes] + [f"test/{c}" for c in test if c not in classes]
        return FolderLayout(root, "split", tuple(classes), tuple(ignored))
    _check_classes([os.path.join(root, c) for c in subfolders], f"{root} has {len(subfolders)} sub-folder(s)",
                   "one sub-folder per class")
    files = sum(f.endswith(".txt") for c in subfolders for f in os.listdir(os.path.join(root, c)))
    if files < 5:   # Keras's 20% of 4 is no file, and it then reads "No training text files found"
        raise UserError(f"Data folder {root} has {files} .txt files; split 80/20 here, it needs 5 (one to test), or {LAYOUTS[1]}.")
    return FolderLayout(root, "flat", tuple(subfolders))


def _subfolders(root: str) -> list[str]:
    try:
        entries = sorted(os.listdir(root))
    except OSError as exc:
        raise UserError(f"Cannot read data folder {root!r}: {exc.strerror}. Give auto, keras, synthetic, or a "
                        f"readable folder laid out as {LAYOUTS[0]}, or as {LAYOUTS[1]}.") from None
    return [e for e in entries if os.path.isdir(os.path.join(root, e)) and not e.startswith(".")]


def _check_classes(folders: list[str], found: str, layout: str) -> None:
    if len({os.path.basename(f) for f in folders}) < 2:
        raise UserError(f"Data folder {found}; expected at least 2 classes, as {LAYOUTS[0]}, or as {LAYOUTS[1]}.")
    for folder in folders:
        try:
            has_text = any(f.endswith(".txt") for f in os.listdir(folder))
        except OSError:
            has_text = False
        if not has_text:
            raise UserError(f"Class folder {folder} is unreadable or has no .txt files (read as {layout}); "
                            f"expected {LAYOUTS[0]}, or {LAYOUTS[1]}.")


def from_folder(path: str, vocab_size: int, max_classes: int, seed: int,
                sequence_length: int = SEQUENCE_LENGTH) -> TextData:
    """Reads a data folder (:func:`folder_layout`) and vectorises to ``sequence_length`` tokens.

    Flat: 80% of the files (shuffled by ``seed``) train, 20% test. Split: ``train/`` and
    ``test/`` as given. The vocabulary is learned from the training texts only.
    """
    layout = folder_layout(path)
    root, classes = layout.root, list(layout.classes)
    if len(classes) > max_classes:
        raise UserError(
            f"Data folder {root} has {len(classes)} class folders ({', '.join(classes[:5])}...); "
            f"this workload takes at most {max_classes}."
        )
    import keras
    import tensorflow as tf

    read = dict(batch_size=None, class_names=classes, verbose=False)
    if layout.kind == "split":
        train_ds = keras.utils.text_dataset_from_directory(os.path.join(root, "train"), shuffle=True, seed=seed, **read)
        test_ds = keras.utils.text_dataset_from_directory(os.path.join(root, "test"), shuffle=False, **read)
    else:
        train_ds, test_ds = keras.utils.text_dataset_from_directory(
            root, validation_split=0.2, subset="both", seed=seed, **read)
    train_text, y_train = _unzip(train_ds)
    test_text, y_test = _unzip(test_ds)
    vectorize = keras.layers.TextVectorization(max_tokens=vocab_size, output_sequence_length=sequence_length)
    vectorize.adapt(tf.constant(train_text))
    return TextData(
        np.asarray(vectorize(tf.constant(train_text)), dtype=np.int32), y_train,
        np.asarray(vectorize(tf.constant(test_text)), dtype=np.int32), y_test,
        f"folder:{root}", vocab_size, len(classes),
        details={"class_names": classes, "seed": seed, "layout": layout.kind, "ignored_folders": list(layout.ignored)},
    )


def _unzip(ds) -> tuple[list[bytes], np.ndarray]:
    texts, labels = [], []
    for text, label in ds.as_numpy_iterator():
        texts.append(text)
        labels.append(label)
    return texts, np.asarray(labels, dtype=np.int32)


def check_exists(source: str) -> str:
    """A data source any workload may be given: a named one, or a path that exists (its
    layout is the workload's to check: :func:`check_source` for the text workloads, the
    user's own ``data()`` for theirs); returns it unchanged."""
    if source in NAMED_SOURCES or os.path.exists(source):
        return source
    raise UserError(f"Unknown data source {source!r}. Valid: {', '.join(NAMED_SOURCES)}, or a path that exists: a "
                    f"folder laid out as {LAYOUTS[0]}, or as {LAYOUTS[1]}, for the text workloads; any file or folder "
                    "your own workload's data() reads.")


def check_source(source: str) -> str:
    """Validates a data-source argument (a folder's layout too); returns it unchanged."""
    if source in NAMED_SOURCES:
        return source
    if os.path.isdir(source):
        folder_layout(source)
        return source
    raise UserError(f"Unknown data source {source!r}. Valid: {', '.join(NAMED_SOURCES)}, or a folder laid out as "
                    f"{LAYOUTS[0]}, or as {LAYOUTS[1]}.")


_announced: set[str] = set()


# How long ``auto`` waits for the Keras loader (a cached file loads in a second or two; a
# download behind a firewall that drops packets would wait for ever), and how long a failed
# attempt is remembered, so that the next runs go to synthetic data at once.
KERAS_TIMEOUT_S: float | None = None   # None: DISTBENCH_KERAS_TIMEOUT's, else 30 (read when a loader is tried)
KERAS_RETRY_AFTER_S = 3600
_tried: dict[str, tuple[bool, str]] = {}


def keras_available(loader: KerasLoader, name: str = "", local_file: str | None = None) -> tuple[bool, str]:
    """Whether the real Keras loader works here (cached file or download): tried at most once
    per process and per ``name``, for at most :func:`keras_timeout_s`, and not again within
    :data:`KERAS_RETRY_AFTER_S` of a failure (remembered in distbench's cache). A download
    that failed for want of the network is remembered for every dataset: one whose file
    (``local_file``, e.g. ``imdb.npz``) is not in Keras's folder is not tried within the hour
    either (behind a firewall that drops packets, each would wait the whole timeout).
    Returns (ok, why not)."""
    if name in _tried:
        return _tried[name]
    memo = cache.path("keras-offline", name, ".json") if name else None
    failed = cache.read_json(memo)
    if failed and time.time() - failed.get("at", 0) < KERAS_RETRY_AFTER_S:
        _tried[name] = (False, f"{failed.get('why', 'failed')} (tried at {time.ctime(failed['at'])}; "
                               f"not tried again within the hour; --data keras tries it now)")
        return _tried[name]
    network = cache.path("keras-offline", _NETWORK, ".json")
    offline = cache.read_json(network)
    folder = keras_dataset_folder()
    if (local_file and offline and time.time() - offline.get("at", 0) < KERAS_RETRY_AFTER_S
            and not os.path.exists(os.path.join(folder, local_file))):
        _tried[name] = (False, f"{local_file} is not in {folder}, and downloading "
                               f"{offline.get('dataset', 'a Keras dataset')}'s failed at {time.ctime(offline['at'])} "
                               f"({offline.get('why', 'failed')}); not tried again within the hour; --data keras "
                               "tries it now")
        return _tried[name]
    found = _attempt(loader)
    if not found[0] and name:
        cache.write_json(memo, {"at": time.time(), "why": found[1]})
        if found[1].startswith("no answer within") or "URL fetch failure" in found[1]:
            cache.write_json(network, {"at": time.time(), "why": found[1], "dataset": name})
    _tried[name] = found
    return found


_NETWORK = "network"   # the memo of a download that failed for want of the network, any dataset's


def keras_timeout_s() -> float:
    """How long the Keras loader may take: :data:`KERAS_TIMEOUT_S`, else ``DISTBENCH_KERAS_TIMEOUT``
    (read at import, a bad one was a traceback from every command), else 30 s."""
    raw = os.environ.get("DISTBENCH_KERAS_TIMEOUT", "").strip() or "30"
    with contextlib.suppress(ValueError):
        value = KERAS_TIMEOUT_S or float(raw)
        if 0 < value <= 240:   # not NaN; within the parent's wait for the worker that tries it (300 s)
            return value
    raise UserError(f"DISTBENCH_KERAS_TIMEOUT={raw!r}: give the seconds the Keras dataset loader may take, a "
                    "number above 0 and at most 240 (unset: 30).")


def _attempt(loader: KerasLoader) -> tuple[bool, str]:
    """Calls ``loader`` for at most :func:`keras_timeout_s`: (ok, why not)."""
    outcome: list[tuple[bool, str]] = []

    def attempt() -> None:
        try:
            loader()
            outcome.append((True, ""))
        except Exception as exc:  # noqa: BLE001 - keras.utils.get_file raises a bare Exception offline
            outcome.append((False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"))

    timeout = keras_timeout_s()
    worker = threading.Thread(target=attempt, name="distbench-keras-data", daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else (False, f"no answer within {timeout:g} s")


def keras_dataset_folder() -> str:
    """Where Keras's loaders keep their files, as ``keras.utils.get_file`` finds it:
    ``$KERAS_HOME/datasets`` (``~/.keras``), or ``/tmp/.keras/datasets`` when that folder is
    not writable (or not there yet)."""
    user = os.path.expanduser("~")
    home = os.environ.get("KERAS_HOME") or os.path.join(user if os.access(user, os.W_OK) else "/tmp", ".keras")
    home = os.path.expanduser(home)
    return os.path.join(home if os.access(home, os.W_OK) else os.path.join("/tmp", ".keras"), "datasets")


def announce_fallback(workload: str, why: str, seed: int) -> None:
    """Says once per process that ``workload`` runs on synthetic data, and why."""
    if workload in _announced:
        return
    _announced.add(workload)
    log.warning(
        "%s: the Keras dataset is not available here (%s); using synthetic data of the same "
        "shapes (seed %d). Records say data: synthetic.", workload, why, seed,
    )
