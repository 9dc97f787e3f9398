"""distbench's pytest plugin: the benchmark matrix as pytest-benchmark benchmarks.

``pytest --benchmark-only`` runs one benchmark per cell (ids like
``reuters_cnn-mirrored-custom``), each in its own worker process. The statistics
pytest-benchmark shows and stores for a cell are its steady-state step times, measured
inside the worker (warm-up excluded, device synced), not the process's wall time; the
whole record goes into ``extra_info["distbench"]``. Plain ``pytest`` skips the matrix.
"""

from __future__ import annotations

import os

import pytest

CELL_MARK = "distbench_cell"


def pytest_addoption(parser: pytest.Parser) -> None:
    from bench import options

    options.add_to_pytest(parser.getgroup("distbench"))


_SESSION = pytest.StashKey["object"]()


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    config.addinivalue_line("markers", f"{CELL_MARK}: a distbench benchmark cell (runs with --benchmark-only)")


def session_of(config: pytest.Config):
    """The distbench session of this pytest run, resolved once from the --distbench-* options."""
    if _SESSION not in config.stash:
        from bench import options
        from bench.session import Session

        config.stash[_SESSION] = Session.from_options(options.from_namespace(config.option, "distbench_"))
    return config.stash[_SESSION]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrizes the matrix (with the accuracy guard's seeds) and the overhead benchmark."""
    if "distbench_cell" in metafunc.fixturenames:
        cells = session_of(metafunc.config).plan
        metafunc.parametrize("distbench_cell", cells, ids=[c.process_id for c in cells])
    if "distbench_overhead_cell" in metafunc.fixturenames:
        cells = session_of(metafunc.config).overhead_plan
        metafunc.parametrize("distbench_overhead_cell", cells, ids=[c.id for c in cells])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("benchmark_only", default=False):
        return
    skip = pytest.mark.skip(reason="benchmark cell: runs with `pytest --benchmark-only`")
    for item in items:
        if {"distbench_cell", "distbench_overhead_cell"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def distbench_session(request: pytest.FixtureRequest):
    """This run's distbench session: runs cells, collects their records, saves the run."""
    return session_of(request.config)


def record_samples(benchmark, samples: list[float]) -> None:
    """Makes pytest-benchmark's statistics those of ``samples`` (seconds).

    pytest-benchmark times a callable with its timer; each of our samples was measured
    in the worker process, so we hand it a timer that replays them: each round's
    ``end - start`` equals one sample. This uses the fixture's ``_timer`` attribute
    (pytest-benchmark 5.x, pinned in pyproject); tests check the stored statistics.
    """
    replay = _ReplayTimer(samples)
    benchmark._timer = replay
    benchmark.pedantic(replay.advance, rounds=len(samples), iterations=1, warmup_rounds=0)


class _ReplayTimer:
    def __init__(self, samples: list[float]) -> None:
        self._samples = list(samples)
        self._now = 0.0
        self._next = 0

    def __call__(self) -> float:
        return self._now

    def advance(self) -> None:
        self._now += self._samples[self._next]
        self._next += 1


def pytest_benchmark_update_machine_info(config, machine_info: dict) -> None:
    from bench.machine import machine_info as distbench_machine_info

    machine_info["distbench"] = distbench_machine_info()


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    """Judges and saves the matrix's records (and any overhead records) as one run."""
    distbench = session.config.stash.get(_SESSION, None)
    if distbench is None or not (distbench.records or distbench.overhead):
        return
    distbench.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    distbench.finish()


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    distbench = config.stash.get(_SESSION, None)
    if distbench is None or not (distbench.records or distbench.overhead):
        return
    terminalreporter.section("distbench")
    terminalreporter.write_line(distbench.summary())
    if distbench.saved:
        terminalreporter.write_line(f"\nSaved {distbench.saved}")
