"""Parent side: the project being measured, and its versions on disk.

The project is the git repository the command runs in: the one holding the matrix file
(:mod:`distbench.session.matrix_file`), else the working directory's. Its workloads (files
and modules), data folders and matrix file are the user's, not distbench's: ``check
--against REV`` and ``bisect`` measure them at REV from a temporary git worktree of
*that* repository, with the installed distbench (:class:`Checkout`). When the project is
distbench's own checkout, its code is the project's code, and a worktree's workers run
that worktree's distbench (:class:`distbench.launchers.trees.CodeTree`).

A version of the project is placed on disk as a whole: its workers start in the same
sub-folder the command was typed in (so ``model:Class`` imports that version's
``model.py``), and absolute paths inside the repository (``--data``, ``file.py:Class``,
which the parent made absolute from where they were typed) move to the same place in
it. A path the version does not have (data git does not track) stays as given: both
sides read the same files.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from distbench.core import references, worktrees
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.core.fileio import project_root
from distbench.launchers.forkserver import release
from distbench.launchers.trees import CodeTree

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Project:
    """The user's project: its repository's top folder (``root``; the working directory
    outside git) and the folder the command runs in (``cwd``)."""

    root: str
    cwd: str
    git: bool

    @classmethod
    def find(cls, matrix_file: str | None = None, cwd: str | None = None) -> "Project":
        cwd = os.path.realpath(cwd or os.getcwd())
        start = os.path.dirname(os.path.realpath(matrix_file)) if matrix_file else cwd
        top = _toplevel(start) or (None if matrix_file is None else _toplevel(cwd))
        return cls(os.path.realpath(top) if top else cwd, cwd, top is not None)

    @property
    def is_distbench(self) -> bool:
        """The project is distbench's own checkout (its code is the project's)."""
        return self.root == os.path.realpath(project_root())

    @property
    def subfolder(self) -> str:
        """Where the command runs, relative to the repository's top (``.`` at the top)."""
        rel = os.path.relpath(self.cwd, self.root)
        return os.curdir if rel.startswith(os.pardir) else rel

    def commit(self, rev: str) -> str:
        """The full commit ``rev`` names in this repository (UserError when none)."""
        if not self.git:
            raise UserError(f"{self.cwd} is not in a git repository, so there is no revision {rev!r} to measure "
                            "against: run from your project's repository (git init; git commit).")
        try:
            return git(self.root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
        except UserError:
            if not git(self.root, "rev-list", "-n", "1", "--all").strip():
                raise UserError(f"{self.root} has no commits yet, so there is no revision {rev!r} to measure "
                                "against: commit your project first (git add; git commit).") from None
            if git(self.root, "rev-parse", "--is-shallow-repository").strip() == "true":   # a CI checkout's
                raise UserError(f"Unknown git revision {rev!r} in {self.root}, a shallow clone whose history stops "
                                "short of it: fetch the history first (git fetch --unshallow; in GitHub Actions, "
                                "actions/checkout with fetch-depth: 0).") from None
            raise UserError(f"Unknown git revision {rev!r} in {self.root}: give a commit, branch or tag "
                            "(e.g. HEAD~1, main, 7d9ce00).") from None

    def working(self) -> "Checkout":
        """The working tree as it is (uncommitted changes included)."""
        return Checkout(self, self.root, None)

    @contextmanager
    def checkout(self, rev: str) -> Iterator["Checkout"]:
        """A temporary git worktree of ``rev`` (removed afterwards)."""
        commit = self.commit(rev)
        self._remove_orphans()
        path = tempfile.mkdtemp(prefix=worktrees.prefix(commit))
        os.rmdir(path)
        git(self.root, "worktree", "add", "--detach", path, commit)
        try:
            self._fill_submodules(path, commit)
            yield Checkout(self, path, commit)
        finally:
            release(path)
            self._remove(path)

    def _fill_submodules(self, path: str, commit: str, modules: str | None = None) -> None:
        """The revision's submodules, and theirs, at the commits it records, cloned from this
        repository's own copies of them (``modules``: where git keeps those of ``path``'s
        repository) where it has them (offline, as a CI runner's checkout does): a worktree
        has none, and a model importing from one failed (ModuleNotFoundError). One that
        cannot be had is said, and its side runs without it."""
        if not os.path.exists(os.path.join(path, ".gitmodules")):
            return
        try:
            listed = git(path, "config", "--file", ".gitmodules", "--get-regexp", r"^submodule\..*\.path$")
        except UserError:
            return   # no submodule declared
        if modules is None:
            common = git(self.root, "rev-parse", "--path-format=absolute", "--git-common-dir").strip()
            modules = os.path.join(common, "modules")
        for key, _, sub in (line.partition(" ") for line in listed.splitlines()):
            name = key.removeprefix("submodule.").removesuffix(".path")
            local = os.path.join(modules, name)
            source = ["-c", f"submodule.{name}.url={local}"] if os.path.isdir(local) else []
            try:
                git(path, "-c", "protocol.file.allow=always", *source, "submodule", "update", "--init", "--", sub)
            except UserError as exc:
                log.warning("the submodule %s of commit %s could not be checked out in its worktree, so its side "
                            "runs without it: %s", sub, commit[:8], exc)
                continue
            self._fill_submodules(os.path.join(path, sub), commit, os.path.join(local, "modules"))

    def _remove(self, path: str, locked_too: bool = False) -> None:
        """Removes the worktree at ``path``; ``locked_too``: also one that ``git worktree
        add`` locked while it made it and never unlocked (killed then: prune keeps it)."""
        try:
            git(self.root, "worktree", "remove", "--force", *(["--force"] if locked_too else []), path)
        except UserError:
            shutil.rmtree(path, ignore_errors=True)
            try:
                git(self.root, "worktree", "prune")
            except UserError:
                pass

    def _remove_orphans(self) -> None:
        """Removes the worktrees an earlier command left in this repository when it was
        killed (its process has ended): each stayed registered in the user's repository,
        one more per CI timeout, which no later command removed."""
        listed = git(self.root, "worktree", "list", "--porcelain").splitlines()
        for path in [line.removeprefix("worktree ") for line in listed if line.startswith("worktree ")]:
            if worktrees.orphaned(path):
                log.warning("removed the worktree %s, left by a distbench command that was killed", path)
                self._remove(path, locked_too=True)


@dataclass(frozen=True)
class Checkout:
    """One version of the project on disk: the working tree itself (``commit`` None) or a
    worktree of a commit at ``path``."""

    project: Project
    path: str
    commit: str | None

    @property
    def cwd(self) -> str:
        """The folder its workers start in: the command's folder, in this version."""
        return os.path.normpath(os.path.join(self.path, self.project.subfolder))

    @property
    def tree(self) -> CodeTree:
        """The distbench its workers run, and their folder: the installed one, unless the
        project is distbench itself and this is another version of it."""
        own = self.project.is_distbench and self.commit is not None
        return CodeTree(self.path if own else None, self.cwd)

    def place(self, path: str, fallback: bool = True) -> str:
        """``path`` (absolute) in this version: the same place in it when inside the
        repository. A path this version does not have stays as given with ``fallback``
        (data git does not track: both sides read it); without, it is the version's own
        path anyway, so that code the revision lacks fails there instead of running the
        working tree's."""
        if self.commit is None or not os.path.isabs(path):
            return path
        rel = os.path.relpath(os.path.realpath(path), self.project.root)
        if rel.startswith(os.pardir):
            return path
        moved = os.path.join(self.path, rel)
        return moved if os.path.exists(moved) or not fallback else path

    def place_ref(self, ref: str) -> str:
        """A spec's ``kind=path/file.py:Class`` with its file placed, and the folder it imports
        from (``...@folder``, a matrix file's) placed too; modules stay (they import from the
        version's folders, where its workers start)."""
        body, folder = references.split_folder(ref)
        placed = self.place(folder, fallback=False) if folder else None
        if folder and self.commit is not None and placed == folder:
            # Outside the repository (a matrix file above it): that folder holds the
            # working tree, so the revision's side would import the working tree's code.
            raise UserError(f"{body.partition('=')[2] or body} imports from {folder}, the folder of a matrix file "
                            f"outside the repository {self.project.root}: the revision's side would import this "
                            "working tree's code from there. Put the matrix file in the repository.")
        head, sep, attr = body.rpartition(":")
        kind, eq, target = head.partition("=")
        if not eq:
            kind, target = "", head
        if sep and os.path.isabs(target):
            target = self.place(target, fallback=False)
        return references.with_folder(f"{kind}{eq}{target}{sep}{attr}", placed)

    def spec(self, spec: CellSpec) -> CellSpec:
        """``spec`` as this version runs it: its data folder and reference files placed."""
        if self.commit is None:
            return spec
        data = self.place(spec.data) if os.path.isabs(spec.data) else spec.data
        return spec.replace(data=data, plugins=tuple(self.place_ref(r) for r in spec.plugins))

    def describe(self) -> dict:
        """What a record says of it."""
        if self.commit is None:
            if not self.project.git:
                return {"folder": self.project.cwd, "git": False}
            try:
                head = git(self.project.root, "rev-parse", "HEAD").strip()
            except UserError:
                head = None   # a repository without commits
            return {"commit": head, "working_tree": True, "dirty": is_dirty(self.project)}
        return {"commit": self.commit, "worktree": self.path}


def tree_label(checkout: "Checkout") -> str:
    """A working tree as its side's label names it: ``commit ce801760 + uncommitted changes``
    (a CI runner that changed tracked files showed as HEAD's commit alone)."""
    found = checkout.describe()
    if not found.get("commit"):
        return "no commit"
    return f"commit {found['commit'][:8]}" + (" + uncommitted changes" if found.get("dirty") else "")


def is_dirty(project: Project) -> bool:
    try:
        return bool(git(project.root, "status", "--porcelain", "--untracked-files=no").strip())
    except UserError:
        return False


def git(root: str, *args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout
    except FileNotFoundError:
        raise UserError("git is not installed (or not on PATH); --against and bisect need it.") from None
    except subprocess.CalledProcessError as exc:
        said = " ".join((exc.stderr or "").split())[:300]
        raise UserError(f"git {' '.join(args)} failed in {root}: {said or f'exit {exc.returncode}'}") from None


def _toplevel(folder: str) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None
