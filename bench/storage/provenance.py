"""What made a run: the project's commit, and distbench's own version, commit and code."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
from pathlib import Path

from distbench import __version__


def commit_info(distbench_root: str | None = None, project: str | None = None) -> dict:
    """The commit of the project being measured (pytest-benchmark's ``get_commit_info``, read
    in ``project``: the folder of its matrix file; else the working directory), and
    distbench's own version and, from a checkout, commit (``distbench``). Read in the working
    directory alone, a run started in a sub-folder was the sub-folder's project (its name),
    and one started in another repository (``pytest /path/to/project/tests``) that one's commit."""
    from pytest_benchmark.utils import get_commit_info

    info = _in_folder(project, get_commit_info)
    own = None
    if distbench_root and os.path.isdir(os.path.join(distbench_root, ".git")):
        try:
            own = subprocess.run(["git", "rev-parse", "HEAD"], cwd=distbench_root, capture_output=True, text=True,
                                 check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            own = None
    info["distbench"] = {"version": __version__, "commit": own, "code": code_hash()}
    return info


def _in_folder(folder: str | None, call):
    """``call()`` with ``folder`` as the working directory (pytest-benchmark's git calls read
    it); the parent's threads that start workers have ended when a run is saved."""
    if not folder:
        return call()
    before = os.getcwd()
    os.chdir(folder)
    try:
        return call()
    finally:
        os.chdir(before)


def code_hash() -> str:
    """A hash of distbench's own source as installed (the package, its strategies and its
    workloads; editable or from a wheel alike): it tells two builds of one version apart,
    where a wheel records no commit and every build is the same version."""
    roots = {name: Path(p).resolve() for name in ("distbench", "distbench.strategies", "distbench.workloads")
             for p in importlib.util.find_spec(name).submodule_search_locations or ()}
    digest = hashlib.sha256()
    for name, root in roots.items():
        others = [r for r in roots.values() if r != root and r.is_relative_to(root)]   # a wheel nests them
        for path in sorted(p for p in root.rglob("*.py") if not any(p.is_relative_to(o) for o in others)):
            digest.update(f"{name}/{path.relative_to(root).as_posix()}\0".encode() + path.read_bytes())
    return digest.hexdigest()[:12]
