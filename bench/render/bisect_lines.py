"""``distbench bisect``'s lines: one per step as it is measured, then what was found."""

from __future__ import annotations

from distbench.analysis.compare import DEFAULT_ACCURACY_TOLERANCE
from distbench.analysis.pairs import examples_differ
from distbench.render import units
from distbench.render.verdicts import failure_lines, less_accurate_line


def _cell(c, tolerance: float) -> str:
    """A cell's speed verdict, each side's test metric when it has one, and whether the pairs
    could not tell its accuracy (a step UNDECIDED by it alone had named only the speed's)."""
    text = f"{c.cell} B/A {units.ratio(c.judgement.ratio, c.judgement.interval)} {c.verdict}"
    if c.metric:
        text += f", test {c.metric[0]} A {units.metric(c.metric_of(0))} B {units.metric(c.metric_of(1))}"
        text += ", accuracy undecided (--max-pairs)" if c.accuracy_undecided(tolerance) else ""
        text += f", accuracy not comparable (test examples {examples_differ(c.pairs)})" if (
            c.accuracy_not_comparable(tolerance)) else ""
    return text


def step_line(number: int, step, total: int, find: str = "regression",
              tolerance: float = DEFAULT_ACCURACY_TOLERANCE) -> str:
    """``step 2: 3f2a1b0c (commit 3 of 5 after GOOD, "Wider hidden layer") against GOOD: SLOWER, 3 pairs (...)``;
    looking for one kind of regression (``find``), what the verdict judged (``ACCURACY SAME``:
    a 7.8x slower step read SAME)."""
    cells = step.refused or "; ".join(_cell(c, tolerance) for c in step.run.cells)
    saved = f"; saved {step.run.saved}" if step.run.saved else ""
    judged = {"less-accurate": "ACCURACY ", "slower": "SPEED "}.get(find, "") if step.verdict == "same" else ""
    return (f"step {number}: {step.commit[:8]} (commit {step.index} of {total} after GOOD, "
            f"\"{step.subject}\") against GOOD: {judged}{step.verdict.upper()}, {step.pairs} pairs ({cells}){saved}")


def closing_lines(found) -> list[str]:
    steps = ", ".join(f"{s.commit[:8]} {s.pairs}" for s in found.steps)
    lines = [f"GOOD {found.good[:8]}, BAD {found.bad[:8]}: {units.count(len(found.commits), 'commit')} after GOOD; "
             f"{units.count(len(found.steps), 'step')}, {units.count(found.pairs, 'pair')} in all (per step: {steps})."]
    # The step that failed the search: the last, or one passed over (git bisect skip) that leaves it undecided
    stuck = [s for s in found.steps if s.verdict == "failed" and (s is found.steps[-1] or s.commit in found.passed_over)]
    failed = stuck[-1] if stuck and not found.first_regressed else None
    if found.first_regressed:
        step = next(s for s in found.steps if s.commit == found.first_regressed)
        lines.append(f"FIRST {step.verdict.upper()} COMMIT: {found.first_regressed} \"{step.subject}\"")
        lines += [less_accurate_line(c, found.tolerance) for c in step.run.cells
                  if "less accurate" in step.verdict and c.less_accurate(found.tolerance)]
        if found.passed_over:
            lines.append(f"Passed over, their cells failed (as git bisect skip): "
                         f"{', '.join(c[:8] for c in found.passed_over)}.")
            lines += _why_passed_over(found)
        later = _later(found.steps[0].verdict, step.verdict)
        if later:
            lines.append(f"BAD is also {later} than GOOD, and {found.first_regressed[:8]} is not: that came later; "
                         f"--find {later.replace(' ', '-')} finds its commit.")
    elif failed:
        lines.append(f"FAILED: {found.reason}; more pairs cannot decide a commit whose cells fail:")
        lines += [f"  {failed.refused}"] if failed.refused else failure_lines(failed.run.cells)
        if found.between:
            after, upto = found.between
            lines.append(f"The regression, if any, lies after {after[:8]}, at or before {upto[:8]}: fix the failure, "
                         "or bisect from a commit after it.")
    elif found.between:
        after, upto = found.between
        lines.append(f"UNDECIDED: {found.reason}. The regression lies after {after[:8]}, at or before {upto[:8]}; "
                     "run again with more --max-pairs (or a longer cell: --steps-per-epoch) to decide.")
    else:
        lines.append(f"NOTHING FOUND: {found.reason}.")
    status = found.exit_status
    word = ("found" if found.first_regressed else "nothing found" if status == 0 else
            "interrupted" if status == 130 else "failed" if failed else "undecided")
    return lines + [f"RESULT: {word} (exit {status})"]


def _why_passed_over(found) -> list[str]:
    """Each commit passed over and its first failure (the reason was in the stored run alone)."""
    lines = []
    for step in (s for s in found.steps if s.commit in found.passed_over):
        why = [step.refused] if step.refused else failure_lines(step.run.cells)
        if why:
            lines.append(f"  {step.commit[:8]}: {why[0].strip()}")
    return lines


def _later(at_bad: str, found: str) -> str | None:
    """What BAD's regression has that the commit found does not (it began later)."""
    missing = [kind for kind in ("slower", "less accurate") if kind in at_bad and kind not in found]
    return missing[0] if missing else None
