"""``distbench plan``'s table: the pairs each cell needs to catch a slow-down, from its
stored pair noise."""

from __future__ import annotations

from distbench.analysis.pairs import MOST_PAIRS
from distbench.render import units
from distbench.render.tables import render_rows


PLAN_HEADERS = ["cell", "pair sd", "from", "pairs needed", "about"]


def plan_rows(plans, effect: float, threshold: float) -> list[list]:
    """For each cell (:class:`distbench.analysis.pairs.PairPlan`): its pair noise, and the
    pairs (and time) to catch ``effect``."""
    rows = []
    for p in plans:
        n = p.noise
        if p.pairs is None and effect > threshold:
            needed, about = f"more than {MOST_PAIRS:,}", "-"
        elif p.pairs is None:
            needed, about = f"never: {units.percent(effect)} does not exceed the {units.percent(threshold)} band", "-"
        else:
            needed, about = p.pairs, f"{p.minutes:.1f} min" if p.minutes is not None else "-"
        apart = ", in lockstep" if n.lockstep else ", one after the other"
        rows.append([p.cell, f"{n.sd:.3f}", f"{n.pairs} pairs in {n.runs} run{'s' * (n.runs != 1)}{apart}", needed,
                     about])
    return rows


def plan_text(plans, effect: float, threshold: float, machine: str, results: str) -> str:
    """``plan``'s table: the pairs each selected cell needs, from its stored pair noise."""
    lines = [f"Pair noise from the interleaved runs stored for {machine} in {results}/:",
             render_rows(PLAN_HEADERS, plan_rows(plans, effect, threshold))]
    if plans:
        lines.append("From pairs of the mode asked (lockstep, or --no-lockstep), else of the other, as each row "
                     "says;\nthe pairs that catch the effect as often as --power asks under the verdict's own "
                     "Student-t interval.")
    else:
        lines.append("No stored interleaved runs for this selection: run `distbench ab --b \"\" ...` "
                     "(an A/A comparison) once to measure the noise.")
    return "\n".join(lines)
