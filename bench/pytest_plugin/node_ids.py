"""The matrix's cells named by their node ids, as pytest prints them.

In a user's project the matrix's module lives in the installed package, outside the
project's folder. Its items are given a path in the project's root folder instead,
``distbench-matrix.py`` (no such file: the module is imported by its name), so that
pytest names a cell ``distbench-matrix.py::test_cell[ID]`` and a conftest's
``item.path.relative_to(config.rootpath)`` holds, as for any test (with the real path
it raised ValueError, and pytest named a cell ``::matrix.py::test_cell[ID]``). pytest
refuses such an id as an argument (no such file), so it is taken out of the run's
arguments before collection and selects the cells it names, as a test's node id
selects the test; the older ``::matrix.py::`` form is taken too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from distbench.core.fileio import project_root

FILE = "distbench-matrix.py"
PREFIX = f"{FILE}::"
PREFIXES = (PREFIX, "::matrix.py::")
_NAMED = pytest.StashKey[list]()


def matrix_path(config: pytest.Config, real: Path) -> Path:
    """Where the matrix's items say they are: its file when the root folder is this checkout
    (not a project that keeps distbench inside it: a .venv's site-packages or a vendored
    copy, whose ids had differed by interpreter), else :data:`FILE` in the root folder, with the root folder's conftests as its
    own. pytest finds a path's conftests by its folder, a path that is no file being a
    folder itself, which it has not visited: the project's conftest hooks (its
    ``pytest_runtest_setup``, pytest's own ``rep_call`` recipe) had never run for a cell,
    here or at the installed path."""
    if config.rootpath == Path(project_root()).resolve() and real.is_relative_to(config.rootpath):
        return real
    path = config.rootpath / FILE
    try:   # as pytest loads a folder's conftests when it collects it (a private call: pytest 8 and 9)
        config.pluginmanager._loadconftestmodules(
            path, config.getoption("importmode"), rootpath=config.rootpath,
            consider_namespace_packages=config.getini("consider_namespace_packages"))
    except (AttributeError, TypeError, ValueError):
        pass   # another pytest: the cells without the project's conftest hooks, as before
    return path


def place(items: list[pytest.Item], path: Path) -> None:
    """``items`` report ``path`` as their file (pytest's ``item.location``, JUnit's ``file``,
    a failure's header), as their node ids do; they named the installed matrix.py."""
    for item in items:
        _, lineno, domain = item.reportinfo()
        item.reportinfo = lambda lineno=lineno, domain=domain: (path, lineno, domain)


def _cell_id(arg: str) -> str | None:
    """What follows a matrix node id's prefix in ``arg`` (None: not one), as given from any folder."""
    found = next((p for p in PREFIXES if arg.startswith(p) or (p == PREFIX and f"/{p}" in arg)), None)
    return arg.split(found, 1)[1] if found else None


def take(config: pytest.Config) -> None:
    """Takes the matrix's node ids out of ``config.args`` (kept for :func:`select`)."""
    ids = {arg: _cell_id(arg) for arg in config.args}
    named = [found for found in ids.values() if found is not None]
    config.stash[_NAMED] = named
    if named:
        config.args[:] = [arg for arg in config.args if ids[arg] is None]


def named(config: pytest.Config) -> list[str]:
    return config.stash.get(_NAMED, [])


def select(config: pytest.Config, added: list[pytest.Item]) -> list[pytest.Item]:
    """The matrix's items the run's node ids name (all of them when it names none); an id
    that names no cell is refused, with what the matrix has."""
    wanted = named(config)
    if not wanted:
        return added
    names = {item.name for item in added} | {getattr(item, "originalname", item.name) for item in added}
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise pytest.UsageError(
            f"{PREFIX}{unknown[0]}: no such cell in this run's matrix; `pytest --benchmark-only --co -q` lists "
            f"its cells ({', '.join(item.name for item in added[:3])}{', ...' if len(added) > 3 else ''})")
    # ``test_cell`` (a function's node id, without a cell's parameters) names every cell of it
    chosen = [item for item in added if item.name in wanted or getattr(item, "originalname", None) in wanted]
    config.hook.pytest_deselected(items=[item for item in added if item not in chosen])
    return chosen


def refuse_without_matrix(config: pytest.Config) -> None:
    """A cell's node id without ``--benchmark-only``: pytest's own refusal ("directory
    argument cannot contain :: selection parts") did not say what would run it."""
    named = [arg for arg in config.args if _cell_id(arg) is not None]
    if named:
        raise pytest.UsageError(f"{named[0]}: a distbench cell runs with --benchmark-only: "
                                f"pytest --benchmark-only \"{named[0]}\"")
