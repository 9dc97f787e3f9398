"""Input iterators are kept until the worker exits: their destructor waits for tf.data's
autotuning thread, seconds at a time (distbench.loops.base.keep)."""

import os
import subprocess
import sys
import time
import weakref

import pytest


def fit_keeps_the_iterator_it_used() -> None:
    """``fit`` of three steps over 0, 1, 2, ...: the kept iterator is ``fit``'s own, left
    where ``fit`` stopped, and the model's ``train_function`` is Keras's again."""
    import numpy as np
    import tensorflow as tf
    from distbench.core import keras_flavour
    from distbench.loops import base

    keras = keras_flavour.api()
    model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    ds = tf.data.Dataset.range(100).map(lambda i: (tf.cast([i], tf.float32), tf.cast([i], tf.float32))).repeat()
    kept = len(base._KEPT)
    model.fit(ds, epochs=1, steps_per_epoch=3, callbacks=[base.keeping_fit_iterator()], shuffle=False, verbose=0)
    assert len(base._KEPT) == kept + 1
    x, _ = next(base._KEPT[-1])
    assert np.asarray(x).ravel().tolist() == [3.0], x
    assert getattr(model.train_function, "__name__", "") != "first_step"
    model.fit(ds, epochs=1, steps_per_epoch=2, callbacks=[base.keeping_fit_iterator()], shuffle=False, verbose=0)
    assert len(base._KEPT) == kept + 2 and np.asarray(next(base._KEPT[-1])[0]).ravel().tolist() == [2.0]


def test_fit_s_own_iterator_is_kept_under_keras_3():
    fit_keeps_the_iterator_it_used()


@pytest.mark.slow
def test_fit_s_own_iterator_is_kept_under_tf_keras():
    pytest.importorskip("tf_keras")
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    code = ("from distbench.core import keras_flavour; assert keras_flavour.current() == 'tf_keras'; "
            "from tests.bench.test_kept_iterators import fit_keeps_the_iterator_it_used as check; check()")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("loop", ["fit", "train_on_batch", "custom"])
def test_each_loop_keeps_its_iterators_and_a_later_cell_drops_an_earlier_cell_s(tiny, loop):
    from distbench.loops import base
    from distbench.scenarios.tasks import run_cell

    assert run_cell(tiny("reuters_cnn", "virtual", loop))["status"] == "ok"
    assert base._KEPT, "the loop kept no iterator"
    for iterator in base._KEPT:
        next(iterator)   # not closed: still yields batches
    # Weak references: the test holding the iterators would pay their destructor's wait here.
    first = [weakref.ref(iterator) for iterator in base._KEPT]
    assert run_cell(tiny("reuters_cnn", "virtual", loop))["status"] == "ok"
    assert base._KEPT and not any(any(a is b() for b in first) for a in base._KEPT)


def test_releases_are_joined_at_exit_by_one_handler_within_one_wait(monkeypatch):
    """Each release registered an exit handler of its own, each waiting up to a minute: a
    process that ran many cells (tests, in-process callers) could wait a minute per release."""
    import threading

    from distbench.loops import base

    registered, gate = [], threading.Event()

    class Slow:   # an iterator whose destructor waits, as TensorFlow's can
        def __del__(self):
            gate.wait(10)

    monkeypatch.setattr(base, "_RELEASING", [])
    monkeypatch.setattr(base, "_KEPT", [])   # not the iterators earlier tests of this process kept (a minute's wait)
    monkeypatch.setattr(base.atexit, "register", registered.append)
    for _ in range(3):
        base.keep(Slow())
        base.release_kept()
    assert registered == [base._join_releases] and len(base._RELEASING) == 3
    monkeypatch.setattr(base, "RELEASE_EXIT_WAIT_S", 1.0)
    began = time.monotonic()
    base._join_releases()   # three threads still in their destructors: one wait of 1 s for them all, not 3
    assert time.monotonic() - began < 2.5
    gate.set()
    monkeypatch.setattr(base, "RELEASE_EXIT_WAIT_S", 60.0)
    base._join_releases()   # released: they end at once (a busy machine may take a moment to run them)
    assert not any(t.is_alive() for t in base._RELEASING)
