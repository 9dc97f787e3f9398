"""Tune's ranking and its closing verdict."""

from __future__ import annotations

from distbench.render import summary, units
from distbench.render.tables import render_rows

TUNE_HEADERS = [
    "rank", "strategy", "loop", "steps/exec", "XLA", "runs", "mean ms/step", "median ms",
    "speed-up vs plain fit of its strategy", "accuracy guard", "notes",
]


def tune_rows(ranked) -> list[list]:
    rows = []
    for k, r in enumerate(ranked, 1):
        res = r.result
        rows.append([
            k if r.accepted else "rejected", res.spec.strategy, res.spec.loop, r.steps_per_execution,
            "on" if res.spec.jit_compile else "off", res.processes, units.ms(res.mean_step), units.ms(res.median),
            f"{r.speedup:.2f}x" if r.speedup else "-", r.guard, "; ".join(res.first.get("loop", {}).get("notes", [])),
        ])
    return rows


# The terminal's ranking (the other formats have TUNE_HEADERS): the loop's notes below it.
TUNE_TERMINAL = ["rank", "strategy", "loop", "steps/exec", "XLA", "runs", "mean ms", "median ms",
                 "vs its plain fit", "guard"]   # each row's against its own strategy's plain fit


def tune_text(ranked, fmt: str) -> str:
    """Tune's ranking as ``fmt``; as a terminal table within 120 columns, each loop's notes
    on lines of their own below it."""
    rows = tune_rows(ranked)
    if fmt != "table":
        return render_rows(TUNE_HEADERS, rows, fmt)
    lines = [render_rows(TUNE_TERMINAL, [row[:-1] for row in rows])]
    notes = [(row[0], row[2], row[3], row[-1]) for row in rows if row[-1]]
    lines += [f"  note, {rank} ({loop}, steps/exec {spe}): {text}" for rank, loop, spe, text in notes]
    return summary.wrap("\n".join(lines))


def tune_document(ranked, verdict: str, not_ranked: list[str], confirmed=None, exit_status: int = 0,
                  interrupted: bool = False) -> str:
    """``tune --format json``: one document, the ranking's numbers as numbers, the verdict and
    the confirmation's (it had been the ranking's rows alone, every number a string)."""
    import json

    rows = [{"rank": k if r.accepted and not interrupted else None, "accepted": r.accepted, "cell": r.result.id,
             "strategy": r.result.spec.strategy, "loop": r.result.spec.loop,
             "steps_per_execution": r.steps_per_execution, "jit_compile": bool(r.result.spec.jit_compile),
             "processes": r.result.processes, "mean_step_s": r.result.mean_step, "median_s": r.result.median,
             "speedup_vs_plain_fit": r.speedup, "guard": r.guard} for k, r in enumerate(ranked, 1)]
    confirmation = None if confirmed is None else {
        "verdict": confirmed.verdict, "pairs": confirmed.judgement.pairs, "ratio": confirmed.judgement.ratio,
        "interval": list(confirmed.judgement.interval) if confirmed.judgement.interval else None}
    return json.dumps({"ranking": rows, "verdict": verdict, "confirmation": confirmation, "interrupted": interrupted,
                       "not_ranked": [line.strip().removeprefix("not ranked: ") for line in not_ranked],
                       "exit_status": exit_status}, indent=2)


def _tune_label(r) -> str:
    spec = r.result.spec
    ops = f", all-reduce {spec.cross_device_ops}" if spec.cross_device_ops != "auto" else ""
    return f"{spec.loop} (steps/exec {r.steps_per_execution}, XLA {'on' if spec.jit_compile else 'off'}{ops})"


def tune_verdict(ranked, confirmed=None) -> str:
    """The fastest accepted configuration by mean step, and what the interleaved pairs say
    of its claim against plain fit (``confirmed``: the PairedCell, when it ran)."""
    accepted = [r for r in ranked if r.accepted]
    if not accepted:
        return "No configuration ran and passed the accuracy guard."
    best = accepted[0]
    text = f"Fastest by mean step: {best.result.spec.strategy} {_tune_label(best)}, {units.ms(best.result.mean_step)} ms/step"
    if best.result.spec.id == (best.plain.spec.id if best.plain else None):
        return text + ": plain fit itself."
    if best.speedup:   # each candidate's processes ran on their own: the machine's drift between them is in it
        text += (f", {best.speedup:.2f}x {best.result.spec.strategy}'s plain fit in the ranking (processes run apart, "
                 "no interval)")
    if confirmed is None:
        return text + ". Not confirmed: the interleaved comparison with plain fit did not run (--confirm-pairs 0)."
    j = confirmed.judgement
    claim = {"faster": "CONFIRMED faster than plain fit", "same": "not faster than plain fit (same within the band)",
             "slower": "SLOWER than plain fit"}.get(
        confirmed.verdict, f"{confirmed.verdict} against plain fit: the ranking's speed-up is not shown")
    # The pairs' figure is the one to read: the ranking's 2.04x had stood beside pairs' 1.30x [1.06, 1.59].
    speedup = f" (a speed-up of {1 / j.ratio:.2f}x [{1 / j.interval[1]:.2f}x, {1 / j.interval[0]:.2f}x])" \
        if j.ratio and j.interval else ""
    return (f"{text}. Interleaved with plain fit ({j.pairs} pairs), which decides: B/A "
            f"{units.ratio(j.ratio, j.interval)}{speedup}, {claim}.")


def interrupted_line(ranked, candidates) -> str:
    """Why an interrupted tune names no winner."""
    return (f"Interrupted: {len(ranked)} of {len(candidates)} candidates measured (the guard's seeds may not have "
            "run); no winner is named and no confirmation ran. Run tune again for a ranking.")


def pair_label(sides) -> str:
    """What the winner's pairs compare: ``digits-default, A plain fit / B fastest: custom``
    (the cell's own id names plain fit, side A, only)."""
    plain, a, b = sides
    return f"{plain.workload}-{plain.strategy}, A {a.label} / B {b.label}"


def confirming_line(sides) -> str:
    """Before the winner's interleaved test against plain fit (``sides``: plain cell, A, B)."""
    _, a, b = sides
    return f"\nConfirming the winner: {b.label} against {a.label}, interleaved ..."


def not_ranked_lines(left_out: list[str], results) -> list[str]:
    """What tune left out, and the candidates that did not run, each with why."""
    found = left_out + [f"{c}: {r.status}: {r.reason}" if not r.measured else f"{c}: {r.shortfall}"
                        for c, r in results.items() if not r.whole]
    return [part for line in found for part in summary.wrap(f"  not ranked: {line}").splitlines()]
