"""Parent side: an interleaved run of two sides (``ab``, ``check --against``), measured and saved.

Side A of ``check --against REV`` runs from a temporary git worktree of REV
(:mod:`distbench.session.worktree`); both sides' processes run as lockstep pairs
(:mod:`distbench.session.interleave`) and the run is stored as one run, cells
``<id>@A`` and ``<id>@B`` with the pairs and verdicts.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from distbench.core.errors import UserError
from distbench.session import interleave
from distbench.session.interleave import PairedCell, Side
from distbench.session.session import Session
from distbench.session.suite import Suite
from distbench.session.worktree import worktree
from distbench.storage.files import save_run


@dataclass(frozen=True)
class PairedRun:
    """What an interleaved run measured, and where it was saved (None: not saved)."""

    a: Side
    b: Side
    cells: list[PairedCell]
    saved: str | None


def run_pairs(values: dict, a: Side, b: Side, threshold: float, min_pairs: int, max_pairs: int,
              budget: float | None, progress=None, against: str | None = None) -> PairedRun:
    """Runs the selection in ``values`` (run options) as interleaved pairs of A and B; saves the run."""
    if values.get("target"):
        raise UserError("Interleaved pairs compare step times; time to target is compared between stored runs: "
                        "`distbench run --target ...` on each side, then `distbench check --baseline N`.")
    session = Session.from_options({**values, "guard_seeds": 0, "repeats": 1})
    session.check_writable()
    suite = Suite()
    with (worktree(a.root) if a.root else contextlib.nullcontext()) as tree:
        a = Side(a.name, a.label, a.changes, a.env, tree)
        engine = interleave.Interleaved(a, b, lambda spec, side: suite.run(spec, side.env, side.root),
                                        threshold, min_pairs, max_pairs, budget, progress)
        paired = engine.run(session.plan, suite.skip_reason)
    saved = None
    if session.saving:
        settings = {"threshold": engine.threshold, "min_pairs": engine.min_pairs, "max_pairs": engine.max_pairs,
                    "budget_s": engine.budget_s, "against": against}
        saved = str(save_run(interleave.records_by_side(paired), session.values["results"],
                             extra={"interleaved": interleave.stored_document_part(a, b, paired, settings)}))
    return PairedRun(a, b, paired, saved)
