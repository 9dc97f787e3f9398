"""``distbench bisect``'s lines: one per step as it is measured, then what was found."""

from __future__ import annotations

from distbench.render import units
from distbench.render.verdicts import failure_lines


def step_line(number: int, step, total: int) -> str:
    """``step 2: 3f2a1b0c (commit 3 of 5 after GOOD, "Wider hidden layer") against GOOD: SLOWER, 3 pairs (...)``."""
    cells = "; ".join(f"{c.cell} B/A {units.ratio(c.judgement.ratio, c.judgement.interval)} {c.verdict}"
                      for c in step.run.cells)
    saved = f"; saved {step.run.saved}" if step.run.saved else ""
    return (f"step {number}: {step.commit[:8]} (commit {step.index} of {total} after GOOD, "
            f"\"{step.subject}\") against GOOD: {step.verdict.upper()}, {step.pairs} pairs ({cells}){saved}")


def closing_lines(found) -> list[str]:
    steps = ", ".join(f"{s.commit[:8]} {s.pairs}" for s in found.steps)
    lines = [f"GOOD {found.good[:8]}, BAD {found.bad[:8]}: {len(found.commits)} commits after GOOD; "
             f"{len(found.steps)} steps, {found.pairs} pairs in all (per step: {steps})."]
    failed = found.steps[-1] if found.steps and found.steps[-1].verdict == "failed" else None
    if found.first_slower:
        step = next(s for s in found.steps if s.commit == found.first_slower)
        lines.append(f"FIRST SLOWER COMMIT: {found.first_slower} \"{step.subject}\"")
    elif failed:
        lines.append(f"FAILED: {found.reason}; more pairs cannot decide a commit whose cells fail:")
        lines += failure_lines(failed.run.cells)
        if found.between:
            after, upto = found.between
            lines.append(f"The slow-down, if any, lies after {after[:8]}, at or before {upto[:8]}: fix the failure, "
                         "or bisect from a commit after it.")
    elif found.between:
        after, upto = found.between
        lines.append(f"UNDECIDED: {found.reason}. The slow-down lies after {after[:8]}, at or before {upto[:8]}; "
                     "run again with more --max-pairs (or a longer cell: --steps-per-epoch) to decide.")
    else:
        lines.append(f"NOTHING FOUND: {found.reason}.")
    status = found.exit_status
    word = ("found" if found.first_slower else "nothing found" if status == 0 else
            "interrupted" if status == 130 else "failed" if failed else "undecided")
    return lines + [f"RESULT: {word} (exit {status})"]
