"""The matrix's cells named by their node ids, as pytest prints them.

In a user's project the matrix's module lives in the installed package, outside the
project's folder, and pytest names a cell ``::matrix.py::test_cell[ID]`` (in its FAILED
lines, ``-v`` and ``--co``), which it then refuses as an argument ("directory argument
cannot contain :: selection parts"). Such arguments are taken out of the run's arguments
before collection, and select the cells they name, as a test's node id selects the test.
"""

from __future__ import annotations

import pytest

PREFIX = "::matrix.py::"
_NAMED = pytest.StashKey[list]()


def take(config: pytest.Config) -> None:
    """Takes the matrix's node ids out of ``config.args`` (kept for :func:`select`)."""
    named = [arg.removeprefix(PREFIX) for arg in config.args if arg.startswith(PREFIX)]
    config.stash[_NAMED] = named
    if named:
        config.args[:] = [arg for arg in config.args if not arg.startswith(PREFIX)]


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
    named = [arg for arg in config.args if arg.startswith(PREFIX)]
    if named:
        raise pytest.UsageError(f"{named[0]}: a distbench cell runs with --benchmark-only: "
                                f"pytest --benchmark-only \"{named[0]}\"")
