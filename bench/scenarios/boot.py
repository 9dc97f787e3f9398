"""Child side: runs a module of a distbench source tree that is not the installed one.

``check --against REV`` in distbench's own checkout runs side A from a git worktree of
REV. Since the one-namespace layout, such a tree's import package ``distbench`` is its
folders ``bench/``, ``strategies/`` and ``workloads/`` as its ``pyproject.toml`` maps
them (``[tool.setuptools.package-dir]``), which ``PYTHONPATH`` cannot express. Run by
path (``python .../scenarios/boot.py ROOT MODULE ARGS...``), this maps ``distbench`` to
ROOT's folders ahead of the installed package and runs MODULE as ``__main__``; the fork
server (:mod:`distbench.scenarios.forkserver`) calls :func:`map_tree` the same way.
Stdlib only: it runs before any distbench is importable.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import runpy
import sys

try:
    import tomllib
except ImportError:   # Python 3.10
    import tomli as tomllib


def package_dirs(root: str) -> dict[str, str]:
    """ROOT's import packages and their folders, as its pyproject.toml maps them."""
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        found = tomllib.load(f).get("tool", {}).get("setuptools", {}).get("package-dir", {})
    return {name: os.path.join(root, folder) for name, folder in found.items() if name}


class TreeFinder(importlib.abc.MetaPathFinder):
    """Finds the mapped packages in their folders; everything else is left to the others."""

    def __init__(self, dirs: dict[str, str]) -> None:
        self.dirs = dirs

    def find_spec(self, fullname, path=None, target=None):
        folder = self.dirs.get(fullname)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder])


def map_tree(root: str) -> None:
    """Makes ROOT's packages the ones imported in this process."""
    sys.meta_path.insert(0, TreeFinder(package_dirs(root)))


def main() -> None:
    root, module, *argv = sys.argv[1:]
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    map_tree(root)
    sys.argv = [module, *argv]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
