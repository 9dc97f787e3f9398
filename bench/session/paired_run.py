"""Parent side: an interleaved run of two sides (``ab``, ``check --against``), measured and saved.

Side A of ``check --against REV`` runs from a temporary git worktree of the project at
REV (:mod:`distbench.session.project`); both sides' processes run as lockstep pairs
(:mod:`distbench.session.interleave`) and the run is stored as one run, cells
``<id>@A`` and ``<id>@B`` with the pairs and verdicts.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, fields, replace

from distbench.analysis import compare, pairs, tolerance
from distbench.core import references
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.session import interleave, matrix_file
from distbench.core.records import CellRecord, skipped
from distbench.session.interleave import NOT_COMPARABLE, PairedCell
from distbench.session.side import Side, validate_side
from distbench.session.project import Checkout, Project, tree_label
from distbench.session.session import Session, base_spec
from distbench.session.suite import Suite
from distbench.storage.files import save_run


@dataclass(frozen=True)
class PairedRun:
    """What an interleaved run measured, and where it was saved (None: not saved)."""

    a: Side
    b: Side
    cells: list[PairedCell]
    saved: str | None
    interrupted: bool = False   # Ctrl-C: ``cells`` holds the pairs that finished, saved as such
    lockstep: bool = True       # whether each pair's processes took turns step by step
    dropped: tuple[str, ...] = ()   # what side A's version selects that side B's does not (:func:`dropped`)


@dataclass(frozen=True)
class Pairs:
    """How many pairs a verdict may take, and the band it is judged against."""

    threshold: float = interleave.DEFAULT_THRESHOLD
    min_pairs: int = interleave.DEFAULT_MIN_PAIRS
    max_pairs: int = interleave.DEFAULT_MAX_PAIRS
    budget: float | None = None
    # The pair's processes take turns step by step; off: one after the other. A side's input
    # pipeline fills while its partner steps, so lockstep flatters whichever side steps second.
    lockstep: bool = True
    # The test metric's loss, B against A, that is a regression (a share of A's value for a
    # lower-is-better metric).
    accuracy_tolerance: float = compare.DEFAULT_ACCURACY_TOLERANCE
    speed: bool = True   # pairs go on while the speed is undecided (off: while the accuracy is, alone)

    def __post_init__(self) -> None:   # before a worktree is made (check --against 1 pair had made one first)
        pairs.check_pairs(self.min_pairs, self.max_pairs, self.threshold)


def run_pairs(values: dict, a: Side, b: Side, settings: Pairs, progress=None, against: str | None = None,
              matrix: str | None = None, given: dict | None = None) -> PairedRun:
    """Runs the selection in ``values`` (run options) as interleaved pairs of A and B; saves the run.

    With ``against``, side A is the project (the repository of the ``matrix`` file, else of
    the working directory) at that revision, with that version's matrix file (the options
    ``given`` on the command line still override it), and side B its working tree.
    """
    project = Project.find(matrix)
    if against:
        project.commit(against)   # an unknown revision is refused before anything runs
    session = paired_session(values, matrix)
    with (project.checkout(against) if against else contextlib.nullcontext()) as version:
        gone: tuple[str, ...] = ()
        if version is not None:   # the revision named with the commit it resolved to
            a = replace(at_version(a, version, matrix, session.base, given),
                        label=f"{a.label} (commit {version.commit[:8]})")
            gone = dropped(version, matrix, given or {})
        else:   # ab: both sides run this tree, and the stored run says so for each
            a = replace(a, checkout=a.checkout or project.working())
        b = replace(b, checkout=b.checkout or project.working())
        if version is not None:   # the tree against the revision: its commit, and whether it has changed since
            b = replace(b, label=f"{b.label} ({tree_label(b.checkout)})")
        run = measure(session, None, a, b, settings, progress, {"against": against, "dropped": list(gone)})
        return replace(run, dropped=gone)


def dropped(version: Checkout, matrix: str | None, given: dict) -> tuple[str, ...]:
    """What ``version``'s matrix file selects that the working tree's does not, for each kind
    the command line leaves to the files (``strategies mirrored``): those cells are measured
    on neither side, and a change that took a cell out of its matrix would pass unchecked
    (``check --baseline`` fails closed on a cell only the baseline has)."""
    theirs_path = version.place(os.path.abspath(matrix)) if matrix else None
    if theirs_path is None or theirs_path == os.path.abspath(matrix) or not matrix_file.declares(theirs_path):
        return ()   # the version has no matrix file: it selected nothing this tree's file drops
    theirs, ours = matrix_file.selection(theirs_path), matrix_file.selection(matrix)
    found = []
    for kind, names in theirs.items():
        if given.get(kind) or kind == "plugin":
            continue   # typed for both sides
        if ours[kind] is None:   # this tree's file selects every registered one: not a reference only theirs loads
            loaded = [*(ours["plugin"] or ()), *(given.get("plugin") or ())]
            gone = [n for n in names or () if references.is_reference(n) and n not in loaded]
        else:
            gone = [n for n in names if n not in ours[kind]] if names is not None else None
        if gone is None or gone:
            found.append(f"{kind} {', '.join(gone)}" if gone else f"every {kind} (this tree's only {', '.join(ours[kind])})")
    return tuple(found)


def paired_session(values: dict, matrix: str | None = None) -> Session:
    """The session of an interleaved run: one process per side and pair, no guard replicates;
    ``matrix``: the project's matrix file, whose folder's commit the stored run records, as run's."""
    if values.get("target"):
        raise UserError("Interleaved pairs compare step times; time to target is compared between stored runs: "
                        "`distbench run --target ...` on each side, then `distbench check --baseline N`.")
    session = Session.from_options({**values, "guard_seeds": 0, "repeats": 1}, matrix=matrix)
    session.check_writable()
    return session


def at_version(side: Side, version: Checkout, matrix: str | None, base: CellSpec, given: dict | None) -> Side:
    """``side`` run from ``version`` of the project, with its matrix file's cell settings."""
    if not os.path.isdir(version.cwd):
        raise UserError(f"Revision {version.commit[:8]} has no folder {version.project.subfolder}, where this "
                        "command runs: run it from a folder that both versions have (the repository's top).")
    try:
        changes = version_changes(version, matrix, base, given or {})
    except UserError as exc:   # its matrix file, named in the version, not in a worktree since removed
        raise UserError(f"Side {side.name} ({side.label}): " + str(exc).replace(version.path + os.sep, "")) from None
    return replace(side, checkout=version, changes={**changes, **side.changes})


def measure(session: Session, suite: Suite | None, a: Side, b: Side, settings: Pairs, progress=None,
            stored: dict | None = None) -> PairedRun:
    """The session's plan as interleaved pairs of ``a`` and ``b``, saved (with ``stored``
    in the run's settings) unless the session does not save. ``suite`` None: one made once
    the sides are checked (it lists the devices, which imports TensorFlow: seconds)."""
    for side in (a, b):
        validate_side(side, session.plan)   # a side's impossible setting: refused, nothing stored
    suite = suite if suite is not None else Suite(listing_env=listing_env(a, b))
    engine = interleave.Interleaved(a, b, interleave.through(suite), settings.threshold, settings.min_pairs,
                                    settings.max_pairs, settings.budget, progress, lockstep=settings.lockstep,
                                    accuracy_tolerance=settings.accuracy_tolerance, speed=settings.speed)
    preflight(suite, session.plan, a, b)
    for spec in session.plan:   # a tolerance no loss of a share could pass: refused now, not after the pairs
        found = suite.guard_metric(spec) if spec.loop is not None else None
        if found:
            tolerance.metric_worse(None, None, found[1], settings.accuracy_tolerance, found[0])
    try:
        paired, interrupted = engine.run(session.plan, suite.skip_reason), False
    except interleave.PairsInterrupted as stop:
        paired, interrupted = stop.cells + not_started(session.plan, stop.cells, a, b, engine.threshold), True
    saved = save_pairs(session, engine, a, b, paired, interrupted,
                       {"accuracy_tolerance": settings.accuracy_tolerance, **(stored or {})},
                       b.checkout.commit if b.checkout else None)
    return PairedRun(a, b, paired, saved, interrupted, engine.lockstep)


def save_pairs(session: Session, engine: interleave.Interleaved, a: Side, b: Side, paired: list[PairedCell],
               interrupted: bool = False, stored: dict | None = None, commit: str | None = None) -> str | None:
    """Interleaved pairs saved as a run of their own (its ``interleaved`` part: the sides,
    the pairs, the engine's settings and ``stored``); None when the session does not save."""
    if not session.saving:
        return None
    part = {"threshold": engine.threshold, "min_pairs": engine.min_pairs, "max_pairs": engine.max_pairs,
            "budget_s": engine.budget_s, "lockstep": engine.lockstep,   # the tolerance its cells were judged with:
            "accuracy_tolerance": compare.DEFAULT_ACCURACY_TOLERANCE, **(stored or {})}   # tune's said it had none
    return str(save_run(records_by_side(paired), session.values["results"], interrupted=interrupted,
                        extra={"interleaved": stored_document_part(a, b, paired, part)}, commit=commit,
                        project=session.project))


# Variables that change which devices a process sees: a side that sets one lists other devices.
DEVICE_ENV = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "TPU_NAME", "COLAB_TPU_ADDR",
              "TPU_VISIBLE_CHIPS", "TF_CONFIG")


def listing_env(a: Side, b: Side) -> dict:
    """The environment whose fork server lists the devices: a side's, when both sides set
    one (``ab TF_ENABLE_ONEDNN_OPTS=1 -- ...=0`` started a third server, and paid a third
    TensorFlow import, for the listing alone), unless it changes which devices a process sees."""
    if not (a.env and b.env):
        return {}   # a side without one starts from the default server anyway
    return next((side.env for side in (a, b) if not set(side.env) & set(DEVICE_ENV)), {})


NOT_STARTED = "interrupted (Ctrl-C) before its first pair"


def not_started(plan: list[CellSpec], done: list[interleave.PairedCell], a: Side, b: Side,
                threshold: float) -> list[interleave.PairedCell]:
    """The cells Ctrl-C stopped before their first pair, named in the table and the stored run
    as ``run`` names the cells it never ran (an interrupted ``ab`` had left them out)."""
    seen = {c.cell for c in done}
    return [interleave.PairedCell(spec.id, threshold, spec, interrupted=True, stopped=NOT_STARTED)
            for spec in interleave.distinct(plan, a, b) if spec.id not in seen]


def preflight(suite: Suite, plan: list[CellSpec], a: Side, b: Side) -> None:
    """A user's workload that cannot run is refused before any timing: the plan's cells, then
    the cells of a side of ``ab`` that sets its own data, seed or Keras (checked as ``run``
    checks its own), naming the side. A side of another version (``check --against``,
    ``bisect``) is not checked here: its workload is that version's code."""
    suite.preflight(plan)
    for side in (a, b):
        if side.changes and not side.of_version:
            try:
                suite.preflight([side.spec(spec) for spec in plan])
            except UserError as exc:
                raise UserError(f"Side {side.name} ({side.label}): {exc}") from None


# What a version's matrix file may not change on its side: the selection (the cells compared
# are this version's), and its data and references (placed in the version by the checkout).
NOT_FROM_VERSION = ("workload", "strategy", "loop", "data", "plugins")
TARGET_ONLY = ("target", "max_steps", "eval_every")   # the matrix file's, for run alone


def version_changes(version: Checkout, matrix: str | None, base: CellSpec, given: dict) -> dict:
    """The cell settings (batch, steps, ...) that ``version``'s matrix file sets otherwise than
    the one in use (``base``); the command line's options (``given``) override both."""
    if not matrix:
        return {}
    theirs_path = version.place(os.path.abspath(matrix))
    if theirs_path == os.path.abspath(matrix) or not matrix_file.declares(theirs_path):
        return {}   # the version has no matrix file there (a pyproject.toml before [tool.distbench]): this one's
    # Its threshold and what the version's side does not take from it, left unread: an old
    # commit's `threshold = 1.5` (a fraction of 1 or more, refused now) had stopped the command.
    # Its target too, with what bounds it: the pairs compare step times (run's alone reads them).
    declared = matrix_file.read(theirs_path, unused=(*NOT_FROM_VERSION, "threshold", *TARGET_ONLY))
    theirs = base_spec({**matrix_file.merge(declared, given), "data": None, "plugins": None})
    return {f.name: getattr(theirs, f.name) for f in fields(CellSpec)
            if f.name not in NOT_FROM_VERSION and getattr(theirs, f.name) != getattr(base, f.name)}


def stored_document_part(a: Side, b: Side, cells: list[PairedCell], settings: dict) -> dict:
    """``distbench.interleaved`` of the stored run."""
    tolerance = settings.get("accuracy_tolerance", compare.DEFAULT_ACCURACY_TOLERANCE)
    return {"a": a.describe(), "b": b.describe(), "test_metric_of_side": "mean",   # runs before: the median
            **settings, "cells": {c.cell: c.as_dict(tolerance) for c in cells}}


def records_by_side(cells: list[PairedCell]) -> dict[str, list[CellRecord]]:
    """The run's cells as stored: ``<id>@A`` and ``<id>@B`` with every process of each side."""
    out: dict[str, list[CellRecord]] = {}
    for c in cells:
        for k, side in enumerate(("A", "B")):
            spec, reason = c.side_specs.get(side, (c.spec, None))
            why = reason or c.skipped or c.stopped or (f"{NOT_COMPARABLE}: {c.incomparable}" if c.incomparable else "")
            found = [pair[k] for pair in c.pairs] or [skipped(spec, why or "not run")]
            out[f"{c.cell}@{side}"] = [{**r, "cell": f"{c.cell}@{side}"} for r in found]
    return out
