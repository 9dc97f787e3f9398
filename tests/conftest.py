"""Test session set-up: two logical CPU devices stand in for two GPUs.

As in Keras's own distribution tests, the CPU is split into two logical devices before
TensorFlow initialises, once for the whole session, through the same guarded set-up the
harness uses; every in-process test then runs under that one set-up.
"""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from distbench.strategies import devices  # noqa: E402
from distbench.strategies.devices import DeviceSetup  # noqa: E402

SESSION_SETUP = DeviceSetup(logical_type="CPU", logical_count=2)
SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
MOVIE_REVIEWS = os.path.abspath(os.path.join(SHARED_DATA, "movie_reviews"))


# What xdist sets in each test process (`pytest -n 2`): the pytest runs that tests start
# (a user's project, `pytest --benchmark-only`) are not xdist workers, and pytest-benchmark
# would take the inherited variable for one and time nothing.
XDIST_VARIABLES = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


def pytest_collection_modifyitems(items):
    """The tests that start worker processes (``slow``: seconds to over a minute each) first,
    in their order, then the rest: under ``pytest -n 2 --dist load --maxschedchunk 1`` (each
    test in this order to the process that is free) the last minutes are then short tests
    that both processes share, not one long test that one process runs alone. (Under
    ``--dist worksteal`` the first process was given the first half of the tests, every slow
    one, and the other only short ones until it took from the first's queue.)"""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)   # stable: the order within each


def pytest_sessionstart(session):
    for name in XDIST_VARIABLES:   # after pytest-benchmark read them (pytest_configure) for this process
        os.environ.pop(name, None)
    # On a GPU machine the in-process cells still run on the CPU (deterministic, and the
    # GPUs' memory stays free for the worker processes that tests start); the hardware
    # this process reports leaves the GPUs out, so that no in-process cell asks for them.
    # TensorFlow's C++ start-up lines stay out of the terminal (`pytest --benchmark-only`
    # in this checkout loads this file too).
    from distbench.strategies.hardware import native_stderr_quiet

    with native_stderr_quiet():
        _cpu_only_session()


def _cpu_only_session():
    if devices.cpu_only_process():
        import dataclasses

        from distbench.strategies import hardware

        cpu_view = dataclasses.replace(hardware.detect(), gpus=())
        hardware.detect = lambda: cpu_view
    devices.apply(SESSION_SETUP)


@pytest.fixture
def tiny():
    """A CellSpec factory for short in-process runs on synthetic data."""
    from distbench.core.config import CellSpec

    def make(workload="reuters_cnn", strategy="default", loop="fit", **fields):
        defaults = dict(
            epochs=1, steps_per_epoch=6, warmup_steps=1, data="synthetic", eval_examples=256,
            matmul_shape=(64, 16, 64), matmul_repeats=3, timing_cost_pairs=0,
        )
        return CellSpec(workload, strategy, loop, **{**defaults, **fields})

    return make


@pytest.fixture
def movie_reviews():
    if not os.path.isdir(MOVIE_REVIEWS):
        pytest.skip(f"real text data not found at {MOVIE_REVIEWS} (only in the project's workspace)")
    return MOVIE_REVIEWS


@pytest.fixture(autouse=True)
def no_cluster_left_in_the_environment():
    """A test that leaves TF_CONFIG (or a SLURM-derived cluster) in this process's environment
    turns every later local cluster into one task of a cluster that does not exist."""
    names = ("TF_CONFIG", "DISTBENCH_CLUSTER_SOURCE")
    before = {n: os.environ.get(n) for n in names}
    yield
    after = {n: os.environ.get(n) for n in names}
    assert after == before, f"the test left {after} in os.environ"
