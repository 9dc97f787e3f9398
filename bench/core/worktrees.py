"""A revision's temporary git worktree, by its folder's name.

``check --against`` checks a revision out into a new ``distbench-<commit8>-<random>/``
folder each run (:meth:`distbench.session.project.Project.checkout` makes it), so a
path inside it (a data folder the revision's matrix file names) differs between runs of
the same revision; :mod:`distbench.analysis.compare` reads it back to tell such a move
from a different folder.
"""

from __future__ import annotations

import os
import re

# Set by the parent for a worker of another version of a user's project (check --against,
# bisect): the working tree's root and the version's worktree, os.pathsep between them; the
# worker refuses project modules imported from the first (distbench.scenarios.definition).
VERSION_ENV = "DISTBENCH_VERSION_PATHS"

_FOLDER = re.compile(r"^.*/distbench-([0-9a-f]{8})-[^/]+/")
_OWNED = re.compile(r"^distbench-[0-9a-f]{8}-(\d+)-[^/]+$")   # a folder named with the pid that made it


def prefix(commit: str) -> str:
    """The ``tempfile.mkdtemp`` prefix of ``commit``'s worktree folder, which names the
    process that makes it (:func:`orphaned`)."""
    return f"distbench-{commit[:8]}-{os.getpid()}-"


def orphaned(path: str) -> bool:
    """Whether ``path`` is a revision's worktree whose process has ended without removing it
    (killed: SIGKILL, a CI job's timeout, the OOM killer). A live process of that pid, one
    not ours to signal, or a folder not on this host (a repository shared by several) keeps it."""
    found = _OWNED.match(os.path.basename(os.path.normpath(path)))
    if not found or not os.path.isdir(path):   # not here: another host's, whose processes this one cannot see
        return False
    try:
        os.kill(int(found.group(1)), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def inside(path) -> str | None:
    """``<commit8>/<the rest>`` for a path inside a revision's worktree; None otherwise."""
    found = _FOLDER.match(path) if isinstance(path, str) else None
    return f"{found.group(1)}/{path[found.end():]}" if found else None
