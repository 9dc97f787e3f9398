"""Parent side: which code a worker runs, and how it is started.

Three kinds of code tree:

* the installed distbench (``root`` None): ``python -m distbench.worker``, started in the
  project's folder of the side it measures (``workdir``: this process's working directory,
  or the same folder in a worktree of another revision of the project), so that the user's
  relative paths and modules mean there what they mean where the command was typed;
* a distbench checkout of another revision (``check --against REV`` in distbench's own
  checkout) in the one-namespace layout: started through :mod:`distbench.scenarios.boot`,
  which maps that tree's folders to ``distbench``;
* a checkout from before that layout (top-level ``bench`` and ``distbench`` packages):
  ``python -m bench.worker`` with the tree first on ``PYTHONPATH``, as those revisions ran.

A source tree's workers start in ``workdir`` when given, else in the tree. The worker's entry point, its
arguments and its record are the same for all three (:mod:`distbench.worker`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

SCENARIOS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scenarios")


@dataclass(frozen=True)
class CodeTree:
    """The code a worker runs (the installed distbench, or a source tree at ``root``) and
    the folder its workers start in (``workdir``; default: the tree, or for the installed
    distbench this process's working directory)."""

    root: str | None = None
    workdir: str | None = None

    @property
    def layout(self) -> str:
        if self.root is None:
            return "installed"
        legacy = os.path.isfile(os.path.join(self.root, "distbench", "__init__.py"))
        return "legacy" if legacy and os.path.isfile(os.path.join(self.root, "bench", "worker.py")) else "mapped"

    @property
    def worker_module(self) -> str:
        return "bench.worker" if self.layout == "legacy" else "distbench.worker"

    def command(self, argv: list[str]) -> list[str]:
        """The command line of a fresh worker interpreter."""
        if self.layout == "mapped":
            return [sys.executable, os.path.join(SCENARIOS, "boot.py"), self.root, self.worker_module, *argv]
        return [sys.executable, "-m", self.worker_module, *argv]

    def server_command(self) -> list[str]:
        """The command line of this tree's fork server (the installed tree's server script)."""
        mapped = ["--map", self.root] if self.layout == "mapped" else []
        return [sys.executable, os.path.join(SCENARIOS, "forkserver.py"), "--module", self.worker_module, *mapped]

    def cwd(self) -> str:
        return self.workdir or self.root or os.getcwd()

    @property
    def code(self) -> "CodeTree":
        """The code alone (one fork server serves its workers in any folder)."""
        return CodeTree(self.root)

    def environ(self, env: dict[str, str]) -> dict[str, str]:
        """The environment of its processes: this one's with ``env`` over it, and, for a
        legacy tree, the tree first on ``PYTHONPATH`` (so that its ``bench`` is the one
        imported), then ``env``'s own ``PYTHONPATH`` and this process's."""
        out = {**os.environ, **env}
        parts = [self.root] if self.layout == "legacy" else []
        parts += filter(None, [env.get("PYTHONPATH"), os.environ.get("PYTHONPATH")])
        if parts:
            # Relative entries mean the worker's folder (a fork server would otherwise
            # resolve them where it started: the working tree, for a worktree's worker).
            entries = os.pathsep.join(parts).split(os.pathsep)
            out["PYTHONPATH"] = os.pathsep.join(os.path.join(self.cwd(), e) if not os.path.isabs(e) else e
                                                for e in entries)
        return out
