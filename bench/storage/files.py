"""Stored runs in ``results/<machine-id>/NNNN_<commit>_<utc>.json``.

The layout and the top-level format are pytest-benchmark's own (``machine_info``,
``commit_info``, ``benchmarks`` with ``stats``, ``datetime``, ``version``), so
``pytest-benchmark --storage results compare`` reads our files. distbench's part sits in
``"distbench"`` (with an integer ``schema_version``) and in each benchmark's
``extra_info["distbench"]``, which holds every repeat's full record, per-step samples
included.

Saving is atomic and never overwrites: the file is written to a temporary name in the
same folder, fsynced, then renamed to the first free ``NNNN`` name, claimed first with an
exclusive ``.claim-NNNN`` file (so two runs saving at once get different numbers).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Callable

from distbench.core import records
from distbench.core.errors import UserError
from distbench.core.fileio import atomic_write_text, dumps, project_root
from distbench.storage import provenance
from distbench.storage.machine import benchmark_machine_info, machine_id, machine_info
from distbench.storage.stored_run import SCHEMA_VERSION, StoredRun

DEFAULT_ROOT = "results"
RUN_FILE = re.compile(r"^(\d{4,})_(.+)\.json$")   # 0001 ... 9999, then 10000 on


def _run_order(path: Path) -> tuple[int, str]:
    """A run file's place among its machine's: by number (10000 after 9999, not before 2)."""
    return int(RUN_FILE.match(path.name).group(1)), path.name


def run_document(
    cell_repeats: dict[str, list[dict]], machine_info: dict, commit: dict, now: dt.datetime,
    overhead: list[dict] | None = None, interrupted: bool = False, extra: dict | None = None,
    plan: dict | None = None,
) -> dict:
    """The JSON document of one run, in pytest-benchmark's format plus distbench's part.

    ``interrupted``: the run was stopped before every planned cell ran; the cells that
    finished are kept, and readers say so. ``plan``: what the run set out to do
    (``repeats``: cell id -> its planned processes, ``guard_seeds``: the accuracy guard's),
    so that a reader can tell a cell an interruption left short, and a guard turned off."""
    from pytest_benchmark import __version__ as pb_version

    measured = {c: reps for c, reps in cell_repeats.items() if records.pooled_samples(reps)}
    return {
        "machine_info": machine_info,
        "commit_info": commit,
        "benchmarks": [_benchmark_entry(cell, repeats) for cell, repeats in measured.items()],
        "datetime": now.isoformat(),
        "version": pb_version,
        "distbench": {
            "schema_version": SCHEMA_VERSION,
            "cells": list(cell_repeats),
            # Skipped and failed cells have no statistics; pytest-benchmark stores none
            # for them either, so they live here, where its tools do not look.
            "unmeasured": {c: reps for c, reps in cell_repeats.items() if c not in measured},
            # The harness-overhead benchmark's records (distbench.session.overhead), when it ran.
            "overhead": overhead or [],
            "interrupted": interrupted,
            # Optional, so schema 1 still: a run stored without it reads as one whose plan is unknown.
            **({"plan": plan} if plan else {}),
            **(extra or {}),   # e.g. "interleaved": an A/B run's pairs and verdicts
        },
    }



def _benchmark_entry(cell: str, repeats: list[dict]) -> dict:
    from pytest_benchmark.stats import Stats

    samples = records.pooled_samples(repeats)
    stats = Stats()
    for s in samples:
        stats.update(s)
    workload = repeats[0]["config"]["workload"]
    return {
        "group": workload,
        "name": f"test_cell[{cell}]",
        "fullname": f"distbench-matrix.py::test_cell[{cell}]",   # its node id in a user's project
        "params": {"distbench_cell": cell},
        "param": cell,
        "extra_info": {"distbench": {"repeats": repeats}},
        "options": {"timer": "distbench worker (perf_counter, device-synced steps)", "disable_gc": False,
                    "min_rounds": None, "max_time": None, "min_time": None, "warmup": "excluded in worker"},
        "stats": {**stats.as_dict(), "data": samples, "iterations": 1},
    }


def save_run(
    cell_repeats: dict[str, list[dict]], root: str | os.PathLike = DEFAULT_ROOT, overhead: list[dict] | None = None,
    interrupted: bool = False, extra: dict | None = None, commit: str | None = None, plan: dict | None = None,
    project: str | None = None,
) -> Path:
    """Saves one run of cells (each with its repeats, and any overhead records) under ``root``;
    ``commit``: the project's commit measured, when not its working tree's (``bisect``);
    ``plan``: what the run set out to do (:func:`run_document`); ``project``: the project's
    folder (its matrix file's; None: the working directory)."""
    machine = benchmark_machine_info()
    info = machine_info(cpu=machine.get("cpu"))
    machine["distbench"] = info
    now = dt.datetime.now(dt.timezone.utc)
    info_commit = provenance.commit_info(project_root(), project)
    if commit:
        info_commit.update(id=commit, dirty=False, measured="a worktree of this commit")
    document = run_document(cell_repeats, machine, info_commit, now, overhead, interrupted, extra, plan)
    return Storage(root).save(document, machine_id(info))


def _kept_elsewhere(document: dict) -> str:
    """Where a run that could not be saved in its folder is kept instead (the system's
    temporary folder: a machine folder made by another user, or a full disk, had lost the
    whole run after it was measured), as a sentence."""
    import tempfile

    path = None
    try:
        fd, path = tempfile.mkstemp(prefix="distbench-unsaved-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(dumps(document))
        os.chmod(path, 0o644)   # as a stored run's, once moved into results/ (mkstemp's is 0600)
    except OSError as exc:
        if path:   # a part written to a disk that filled up: no truncated run left behind
            with contextlib.suppress(OSError):
                os.unlink(path)
        return f"Nothing was saved (nor in the temporary folder: {exc.strerror or exc})."
    return (f"The run is kept in {path}: the stored-run commands read it by that path; move it into the folder, "
            "as the next number there (NNNN_<commit>_<date>_<time>.json), once it is writable.")


class Storage:
    """The ``results/`` folder: saving, finding and loading runs."""

    def __init__(self, root: str | os.PathLike = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    def save(self, document: dict, machine_id: str) -> Path:
        """Writes ``document`` atomically as the next run of ``machine_id``; returns its path."""
        folder = self.root / machine_id
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".tmp-{os.getpid()}-{dt.datetime.now().timestamp():.6f}.part"
            atomic_write_text(str(tmp), dumps(document))
        except OSError as exc:
            raise UserError(f"Cannot write results to {folder}: {exc.strerror or exc}. {_kept_elsewhere(document)}") \
                from None
        commit = (document.get("commit_info", {}).get("id") or "nocommit")[:8]
        stamp = dt.datetime.fromisoformat(document["datetime"]).strftime("%Y%m%d_%H%M%S")
        number = None
        try:
            number = self._claim(folder)
            target = folder / f"{number:04d}_{commit}_{stamp}.json"
            os.replace(tmp, target)
        except OSError as exc:
            if number is not None:
                (folder / f".claim-{number:04d}").unlink(missing_ok=True)
            # The run stays in its temporary file rather than being lost: say where.
            raise UserError(f"Cannot save the run in {folder}: {exc.strerror or exc}. It is kept in {tmp}; "
                            f"rename it to the next number there (NNNN_{commit}_{stamp}.json).") from None
        try:
            (folder / f".claim-{number:04d}").unlink(missing_ok=True)
        except OSError:
            pass   # the run is saved; a claim left behind only skips its number
        return target

    def _claim(self, folder: Path) -> int:
        """The next run number of ``folder``, claimed for this process alone.

        A number is claimed by creating ``.claim-NNNN`` exclusively (``O_EXCL``: atomic on
        every local file system, hard links not needed), then checking that no run file has
        it yet; the claim goes once the run file is in place. Two runs saving at once, in
        the same second or not, get two numbers; a claim left by a killed save only skips
        its number.
        """
        number = self._next_number(folder)
        while True:
            try:
                os.close(os.open(folder / f".claim-{number:04d}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:
                number += 1
                continue
            if number not in self._numbers(folder):
                return number
            (folder / f".claim-{number:04d}").unlink(missing_ok=True)
            number = self._next_number(folder)

    @staticmethod
    def _numbers(folder: Path) -> set[int]:
        return {int(m.group(1)) for p in _listing(folder) if (m := RUN_FILE.match(p.name))}

    @classmethod
    def _next_number(cls, folder: Path) -> int:
        return max(cls._numbers(folder), default=0) + 1

    def machine_folders(self) -> list[Path]:
        """One folder per machine that has stored runs, by name."""
        if not self._readable():
            return []
        return sorted(p for p in _listing(self.root) if p.is_dir() and self.runs(p.name))

    def runs(self, machine_id: str | None = None) -> list[Path]:
        """Run files, oldest first (by number), of one machine or of all."""
        if not self._readable():
            return []
        folders = [self.root / machine_id] if machine_id else sorted(p for p in _listing(self.root) if p.is_dir())
        found = []
        for folder in folders:
            if folder.is_dir():
                found += sorted((p for p in _listing(folder) if RUN_FILE.match(p.name)), key=_run_order)
        return found

    def _readable(self) -> bool:
        """Whether the results folder is there (UserError when its path is something else:
        "none stored" would hide the typo)."""
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"--results {self.root} is a file, not a folder of stored runs; give the results folder.")
        return self.root.is_dir()

    def resolve(self, ref: str, machine_id: Callable[[], str]) -> Path:
        """A run reference -> its file: a path, ``latest``, ``latest~N``, or a run number, of
        this machine or, as ``MACHINE/N`` (``MACHINE/latest``), of a machine folder here.

        Numbers and ``latest`` look in the only machine folder when there is just one,
        else in this machine's (``machine_id()``, called only then: it may import TensorFlow).
        """
        machine, _, rest = ref.partition("/")
        if (machine and rest and "/" not in rest and (self.root / machine).is_dir()
                and not (self.root / machine / rest).is_file()):
            if not self.runs(machine):
                raise UserError(f"No stored runs in {self.root / machine}/.")
            return self._pick(ref, rest, self.runs(machine))
        if os.path.sep in ref or ref.endswith(".json"):
            path = Path(ref)
            if not path.exists() and (self.root / ref).is_file():
                path = self.root / ref   # a run's label, as the commands print it: MACHINE/FILE
            if path.is_dir():
                found = self.runs(path.name) if path.parent.resolve() == self.root.resolve() else []
                example = f", e.g. {found[-1]}, or {path.name}/N for its run N" if found else ""
                raise UserError(f"{ref!r} is a folder: give one stored run (a file in it{example}).")
            if not path.is_file():
                folders = sorted(p.name for p in _listing(self.root) if p.is_dir()) if self.root.is_dir() else []
                known = (f" Machines with runs in {self.root}: {', '.join(folders)} (name a run MACHINE/N)."
                         if rest and "/" not in rest and folders else "")
                raise UserError(f"No stored run at {ref!r}: the file does not exist.{known}")
            return path
        runs = self._single_machine_runs()
        if not runs:
            mine = machine_id()
            folder = f"{self.root}/{mine}"
            runs = self.runs(mine)
            if not runs:
                others = ", ".join(p.name for p in self.machine_folders())
                there = f" Other machines' runs are here ({others}): name one as MACHINE/N or MACHINE/latest."
                raise UserError(
                    f"No stored runs in {folder}/. Save one with `distbench run` "
                    f"or `pytest --benchmark-only` first.{there if others else ''}"
                )
        return self._pick(ref, ref, runs)

    def _pick(self, ref: str, rest: str, runs: list[Path]) -> Path:
        """``rest`` (a run number, ``latest`` or ``latest~N``) among one machine's ``runs``;
        a number two files share (a machine folder copied into another) is refused."""
        by_number: dict[int, list[Path]] = {}
        for path in runs:
            by_number.setdefault(int(RUN_FILE.match(path.name).group(1)), []).append(path)
        numbers = sorted(by_number)
        match = re.fullmatch(r"latest(?:~(\d+))?", rest)
        if match:
            back = int(match.group(1) or 0)
            if back >= len(numbers):
                shared = f" ({len(runs)} files: some share a number)" if len(runs) != len(numbers) else ""
                raise UserError(f"Run {ref!r} does not exist: only {len(numbers)} stored run(s){shared} in "
                                f"{runs[0].parent}.")
            return _one(ref, by_number[numbers[-1 - back]])
        if re.fullmatch(r"[0-9]+", rest):   # not str.isdigit: "²" is a digit that int() refuses
            if int(rest) in by_number:
                return _one(ref, by_number[int(rest)])
            elsewhere = [f"{p.parent.name}/{int(rest)}" for p in self.runs() if p.parent != runs[0].parent
                         and int(RUN_FILE.match(p.name).group(1)) == int(rest)]
            other = f" Another machine's: {', '.join(elsewhere)}." if elsewhere else ""
            raise UserError(f"Run number {rest} does not exist in {runs[0].parent}. Stored: {_spans(numbers)}.{other}")
        raise UserError(f"Bad run reference {ref!r}: give a file path, a run number, latest, or latest~N (of another "
                        "machine here: MACHINE/N, MACHINE/latest).")

    def _single_machine_runs(self) -> list[Path]:
        folders = [p for p in _listing(self.root) if p.is_dir()] if self.root.is_dir() else []
        return self.runs(folders[0].name) if len(folders) == 1 else []


def _listing(folder: Path) -> list[Path]:
    """The entries of a results folder; one that cannot be read is the user's error, in one line."""
    try:
        return list(folder.iterdir())
    except OSError as exc:
        raise UserError(f"Cannot read the results folder {folder}: {exc.strerror}. Pass --results DIR, a folder "
                        "you can read.") from None


def _one(ref: str, paths: list[Path]) -> Path:
    """The one file of a run number; two are refused, naming both (the number is ambiguous)."""
    if len(paths) > 1:
        raise UserError(f"Run {ref!r} is ambiguous: {len(paths)} files of {paths[0].parent} have its number "
                        f"({', '.join(p.name for p in paths)}; two git branches' results merged, or a machine folder "
                        "copied into another?); give the file's path.")
    return paths[0]


def _spans(numbers: list[int]) -> str:
    """``0001-0005, 0007``: run numbers as runs of consecutive ones."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a:04d}" if a == b else f"{a:04d}-{b:04d}" for a, b in spans)


def load_history(paths) -> tuple[list[StoredRun], list[str]]:
    """Every readable run of ``paths`` (a machine's history, for its noise), and one line per
    run left out: one that cannot be read (one corrupt file costs the history one run, not
    the command), one measured on another machine than its folder's, and a copy of a run
    read before it (``0003_... (copy).json``, which sorts before its original: their
    differences, all zero, had narrowed the noise until an undecided comparison read "faster")."""
    runs, left_out, seen = [], [], {}
    for path in paths:
        try:
            run = load(path)
        except UserError as exc:
            left_out.append(str(exc))
            continue
        measured_on = run.measured_on
        if measured_on:
            left_out.append(f"{run.label} was measured on machine {measured_on}, by its stored fingerprint, not "
                            f"{run.machine_id} (another machine's run copied into this folder?)")
            continue
        same = seen.setdefault(run.measurements, run)
        if same is not run:
            left_out.append(f"{run.label} and {same.label} hold the same measurements (one a copy): counted once")
            continue
        runs.append(run)
    return runs, left_out


def load(path: str | os.PathLike) -> StoredRun:
    """Loads and checks a run file; refuses truncated, foreign and unknown-version files."""
    path = Path(path)
    # Deleting is advice for a stored run's file only, not for any file given by its path.
    advice = ("truncated or corrupted. Delete it or restore it from version control." if RUN_FILE.match(path.name)
              else "not a stored run (`distbench list` lists them).")
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"Cannot read {path}: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not text (not UTF-8): {advice}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # ("Unterminated string starting at" at line 88: one "at")
        raise UserError(f"{path} is not valid JSON ({exc.msg.removesuffix(' at')} at line {exc.lineno}): "
                        f"{advice}") from None
    part = data.get("distbench") if isinstance(data, dict) else None
    if not isinstance(part, dict) or "schema_version" not in part:
        raise UserError(
            f"{path} is not a distbench run (no 'distbench' section with a schema_version); it may be "
            "a plain pytest-benchmark file. Compare it with `pytest-benchmark compare` instead."
        )
    version = part["schema_version"]
    if version != SCHEMA_VERSION:
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        hint = "upgrade distbench to read it" if newer else "re-run the benchmark to store it in the current format"
        raise UserError(
            f"{path} has distbench schema version {version!r}; this distbench reads version "
            f"{SCHEMA_VERSION} only: {hint}."
        )
    match = RUN_FILE.match(path.name)
    run = StoredRun(path, int(match.group(1)) if match else 0, path.parent.name, data)
    damage = run.damage()
    if damage:
        raise UserError(f"{path} {damage}: {advice}")
    return run
