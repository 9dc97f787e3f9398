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
    group = parser.getgroup("distbench")
    group.addoption("--distbench-profile", default="quick", help="quick (default) or full (the notes' 10-epoch runs)")
    group.addoption("--distbench-data", default="auto", help="auto, keras, synthetic, or a text folder")
    group.addoption("--distbench-deadline", type=float, default=None, help="seconds per cell before SIGKILL")
    group.addoption("--distbench-matmul-shape", default=None, help="quick, seed or M,K,N")
    group.addoption("--distbench-results", default="results", help="where runs are saved (default: results)")
    group.addoption("--distbench-scaling", default="strong", choices=("strong", "weak"),
                    help="strong: global batch fixed (default); weak: per-replica batch fixed")
    group.addoption("--distbench-no-save", action="store_true", help="do not save the run")
    group.addoption("--distbench-guard-seeds", type=int, default=3,
                    help="training seeds of the reference cell for the accuracy guard (default 3; 0 or 1: off)")


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    config.addinivalue_line("markers", f"{CELL_MARK}: a distbench benchmark cell (runs with --benchmark-only)")
    config.stash[_RECORDS] = []
    config.stash[_OVERHEAD] = []


_RECORDS = pytest.StashKey[list]()
_OVERHEAD = pytest.StashKey[list]()
_SAVED = pytest.StashKey[str]()


def matrix_base_spec(config: pytest.Config):
    from bench.config import CellSpec
    from workloads.matmul import parse_shape

    fields = {"data": config.getoption("--distbench-data"), "scaling": config.getoption("--distbench-scaling")}
    if config.getoption("--distbench-deadline"):
        fields["deadline_s"] = config.getoption("--distbench-deadline")
    if config.getoption("--distbench-matmul-shape"):
        fields["matmul_shape"] = parse_shape(config.getoption("--distbench-matmul-shape"))
    return CellSpec.for_profile(config.getoption("--distbench-profile"), workload="", strategy="", loop=None, **fields)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrizes the matrix (with the accuracy guard's seeds) and the overhead benchmark."""
    from bench import guard
    from bench.suite import build_cells, overhead_cells

    if "distbench_cell" in metafunc.fixturenames:
        cells = guard.with_replicates(build_cells(base=matrix_base_spec(metafunc.config)),
                                      metafunc.config.getoption("--distbench-guard-seeds"))
        metafunc.parametrize("distbench_cell", cells, ids=[c.id for c in cells])
    if "distbench_overhead_cell" in metafunc.fixturenames:
        cells = overhead_cells(build_cells(base=matrix_base_spec(metafunc.config)))
        metafunc.parametrize("distbench_overhead_cell", cells, ids=[c.id for c in cells])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("benchmark_only", default=False):
        return
    skip = pytest.mark.skip(reason="benchmark cell: runs with `pytest --benchmark-only`")
    for item in items:
        if {"distbench_cell", "distbench_overhead_cell"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def distbench_suite():
    from bench.suite import Suite

    return Suite()


@pytest.fixture(scope="session")
def distbench_overhead(request: pytest.FixtureRequest) -> list:
    """The harness-overhead records of this session."""
    return request.config.stash[_OVERHEAD]


@pytest.fixture(scope="session")
def distbench_records(request: pytest.FixtureRequest) -> list:
    """Every record of this session, for the closing table."""
    return request.config.stash[_RECORDS]


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


def _as_run(records: list) -> dict:
    return {r["cell"]: [r] for r in records}


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    """Saves the matrix's records (and any overhead records) as one run under results/."""
    config = session.config
    records, overhead = config.stash.get(_RECORDS, []), config.stash.get(_OVERHEAD, [])
    if not records and not overhead:
        return
    from bench import guard

    guard.apply(_as_run(records))   # before the summary and the save: both show its flags
    if config.getoption("--distbench-no-save"):
        return
    from bench.storage import save_run

    path = save_run(_as_run(records), config.getoption("--distbench-results"), overhead)
    config.stash[_SAVED] = str(path)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    records, overhead = config.stash.get(_RECORDS, []), config.stash.get(_OVERHEAD, [])
    if not records and not overhead:
        return
    from bench import tables

    terminalreporter.section("distbench")
    terminalreporter.write_line(tables.run_summary(_as_run(records), overhead=overhead))
    if config.stash.get(_SAVED, None):
        terminalreporter.write_line(f"\nSaved {config.stash[_SAVED]}")
