"""What the matrix refuses of pytest and its plugins, where it will run: pytest-benchmark's
storage flags (its storage does not see distbench's runs) and pytest-xdist's workers (which
would time the cells side by side). A session that measures no cell keeps them."""

from __future__ import annotations

import pytest

CELL_MARK = "distbench_cell"   # every cell's mark: -m distbench_cell, or "not distbench_cell"


def may_measure_cells(config: pytest.Config) -> bool:
    """Whether this session may measure a cell: not with --collect-only, nor with a ``-m``
    that no cell passes (``-m "not distbench_cell"``: the project's own benchmarks alone, which
    pytest-benchmark may store and compare, and xdist run)."""
    if config.getoption("collectonly", default=False):
        return False
    expression = config.getoption("markexpr", default="")
    if not expression:
        return True
    try:   # pytest's own reading of -m; every cell carries the one mark
        from _pytest.mark.expression import Expression

        return bool(Expression.compile(expression).evaluate(lambda name, **kwargs: name == CELL_MARK))
    except Exception:  # noqa: BLE001 - another pytest's expression module, or an -m pytest refuses itself
        return True


REFUSED = ("benchmark_compare", "benchmark_compare_fail", "benchmark_autosave", "benchmark_save")


def pytest_benchmark_storage(config: pytest.Config) -> None:
    given = [name for name in REFUSED if config.getoption(name, default=None) not in (None, False, [])]
    if given:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise pytest.UsageError(
            f"{flags}: distbench stores its runs itself (results/<machine-id>/, one file per run, with every "
            "process's samples), where pytest-benchmark's storage does not look; compare and check them with "
            "`distbench compare latest~1 latest` or `distbench check --baseline N`; the project's own benchmarks "
            f"alone keep them: -m \"not {CELL_MARK}\" (-k is not read here).")


def xdist(config: pytest.Config) -> None:
    """The matrix under pytest-xdist: each worker ran the cells it drew at the same time as
    the others' (timing each other), saved a run of its own and printed no table; with
    ``--benchmark-skip`` in addopts pytest-benchmark let it through."""
    workers, tx = config.getoption("numprocesses", default=None), config.getoption("tx", default=None)
    if hasattr(config, "workerinput") or workers or tx:
        raise pytest.UsageError(parallel_line(config))


def parallel_line(config: pytest.Config) -> str:
    """Why the cells do not run under pytest-xdist, and what to run instead."""
    workers, tx = config.getoption("numprocesses", default=None), config.getoption("tx", default=None)
    given = f"-n {workers}" if workers else f"--tx {' '.join(tx)}" if tx else "pytest-xdist"
    return (f"{given}: distbench times its cells one at a time, and pytest-xdist's workers would run them side "
            "by side, each timing the others; run `pytest --benchmark-only -n 0` (ordinary tests keep -n, and the "
            f"project's own benchmarks alone: -m \"not {CELL_MARK}\")")


def selected_cells(config: pytest.Config, cells: list) -> None:
    """After -k and -m: a ``-m`` that :func:`may_measure_cells` read as leaving no cell
    passed cells by the project's own marks (``-m perf``, a mark its conftest gives every
    benchmark), and the refusals of storage flags and xdist were passed over. The storage
    flags are refused now; an xdist worker fails each cell instead (:func:`in_parallel`: its
    usage error is xdist's INTERNALERROR)."""
    if cells and not hasattr(config, "workerinput") and not config.getoption("collectonly", default=False):
        pytest_benchmark_storage(config)


def in_parallel(item: pytest.Item) -> str | None:
    """Why ``item`` must not run: a cell in a pytest-xdist worker."""
    if hasattr(item.config, "workerinput") and item.get_closest_marker(CELL_MARK):
        return parallel_line(item.config)
    return None
