"""Parent side: a temporary git worktree of another revision, the code of one side of
``check --against``."""

from __future__ import annotations

import os
import subprocess
import tempfile
from contextlib import contextmanager
from typing import Iterator

from distbench.core.errors import UserError
from distbench.core.fileio import project_root
from distbench.launchers.forkserver import release


@contextmanager
def worktree(rev: str) -> Iterator[str]:
    """A temporary git worktree of ``rev`` (removed afterwards); its path."""
    root = project_root()
    try:
        commit = _git(root, "rev-parse", "--verify", f"{rev}^{{commit}}").strip()
    except subprocess.CalledProcessError:
        raise UserError(f"Unknown git revision {rev!r} in {root}: give a commit, branch or tag "
                        "(e.g. HEAD~1, main, 7d9ce00).") from None
    path = tempfile.mkdtemp(prefix=f"distbench-{commit[:8]}-")
    os.rmdir(path)
    _git(root, "worktree", "add", "--detach", path, commit)
    try:
        yield path
    finally:
        release(path)
        _git(root, "worktree", "remove", "--force", path)


def _git(root: str, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout
