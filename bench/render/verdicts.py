"""Verdicts as lines and rows: `check`'s closing lines, the interleaved ``ab`` / ``check --against``, ``plan`` (stored runs' table: :mod:`distbench.render.comparison_table`)."""

from __future__ import annotations

import json

from distbench.analysis.compare import DEFAULT_ACCURACY_TOLERANCE, EXIT_PASS, EXIT_REGRESSION, MIN_HISTORY_RUNS
from distbench.analysis.pairs import OTHER_EXAMPLES, UNEVEN, examples_differ, examples_vary
from distbench.core import stats
from distbench.core.records import short_reason
from distbench.render import summary, units
from distbench.render.guard_text import guard_message
from distbench.render.side_lines import examples_lines, setting_lines


def regression_line(r) -> str:
    """One reason the newer run fails the check."""
    c = r.comparison
    if r.kind == "slower":
        what = "time to target" if c.target else "median"
        change = (f"B/A {units.ratio(c.ratio, c.ratio_ci)}, wholly above {units.times(1 + c.threshold)}"
                  if c.ratio else "B did not reach the target in most seeds")
        return (f"{c.cell}: slower, {what} {units.estimate(c.median_a, c.target)} -> "
                f"{units.estimate(c.median_b, c.target)} ({change})")
    if r.kind == "accuracy":
        a, b, seeds = r.metric
        if b is None:
            return (f"{c.cell}: test {c.metric} {units.metric(a)} -> none: a process of B recorded no {c.metric} "
                    "(NaN or infinite: its model diverged)")
        over = f", the median over its {seeds} training seeds" if seeds > 1 else ""
        lower = (c.b or c.a).guard_direction == "lower"   # the tolerance is then a share of A's value
        allowed = f"{r.tolerance:g} of A's value, {r.tolerance * abs(a):.3f}" if lower else f"{r.tolerance:g}"
        return (f"{c.cell}: test {c.metric} {units.metric(a)} -> {units.metric(b)}{over} "
                f"(worse by {abs(b - a):.3f}, more than the tolerance {allowed})")
    return f"{c.cell}: learns worse than its reference now (accuracy guard: {guard_message(c.b.guard)})"


def undecided_line(c) -> str:
    """A cell the check could neither pass nor fail."""
    if c.ratio is None:
        return f"{c.cell}: neither run reached the target in most seeds"
    if c.fewer_reached:
        return (f"{c.cell}: B reached the target in {c.b.reached} of {len(c.b.times_to_target)} seeds, A in "
                f"{c.a.reached} of {len(c.a.times_to_target)}: the median time over seeds (B/A "
                f"{units.ratio(c.ratio, c.ratio_ci)}) cannot say that B is as fast")
    if c.ratio_ci is None:
        return (f"{c.cell}: B/A {c.ratio:.2f}, no interval: fewer than the stored runs needed to know this cell's "
                f"noise ({MIN_HISTORY_RUNS} measured as B was, besides A and B)")
    return (f"{c.cell}: B/A {units.ratio(c.ratio, c.ratio_ci)} reaches past {units.times(1 + c.threshold)} or "
            f"{units.times(1 / (1 + c.threshold))} (noise from {c.noise_runs} stored runs)")


def check_lines(outcome, a_label: str, b_label: str, tolerance: float) -> list[str]:
    """check's closing lines: what failed, what it could not decide or find, or the pass."""
    lines = []
    if outcome.other_machine:
        allowed = " (allowed by --allow-other-machine)" if outcome.allow_other_machine else ""
        anyway = "" if allowed else ", or check them anyway with --allow-other-machine"
        lines.append(f"OTHER MACHINE{allowed}: {a_label} and {b_label} ran on machines of different fingerprints "
                     "(hardware, software or speed-relevant environment: "
                     + "; ".join(f"{k}: {va} -> {vb}" for k, va, vb in outcome.other_machine)
                     + f"): their speeds differ by more than the code; compare them with `distbench compare`{anyway}.")
    if outcome.failures:
        lines += [f"FAIL: {b_label} regressed against {a_label}:"] + [f"  {regression_line(r)}" for r in outcome.failures]
    if outcome.undecided:
        allowed = " (allowed by --allow-undecided)" if outcome.allow_undecided else ""
        lines += [f"UNDECIDED{allowed}: {units.count(len(outcome.undecided), 'cell')} could not be judged:"]
        lines += [f"  {undecided_line(c)}" for c in outcome.undecided]
    if outcome.failed:
        lines += [f"FAILED: {units.count(len(outcome.failed), 'cell')} crashed or cut short in {b_label} "
                  "(no option lets this through):"]
        lines += [f"  {c.cell}: {_missing_reason(c)}" for c in outcome.failed]
    if outcome.missing:
        allowed = " (allowed by --allow-missing)" if outcome.allow_missing else ""
        lines += [f"MISSING{allowed}: {units.count(len(outcome.missing), 'cell')} not measured in both runs:"]
        lines += [f"  {c.cell}: {_missing_reason(c)}" for c in outcome.missing]
    if outcome.differing:
        allowed = " (allowed by --allow-missing)" if outcome.allow_missing else ""
        lines += [f"NOT COMPARABLE{allowed}: {units.count(len(outcome.differing), 'cell')} measured differently in the "
                  "two runs:"]
        lines += [f"  {c.cell}: {'; '.join(c.differences)}" for c in outcome.differing]
        if any(d.startswith("workload code") for c in outcome.differing for d in c.differences):
            # Not indented: wrapped to the terminal as the other sentences are (it was 168 columns)
            lines.append("Stored runs of two versions of the model's code are two measurements; `distbench check "
                         "--against REV` measures both versions now, side by side, and judges the change.")
    if outcome.new:
        lines += [f"NOT CHECKED: {units.count(len(outcome.new), 'cell')} only in {b_label}, with nothing in "
                  f"{a_label} to check against (measure them in a baseline to check them):"]
        lines += [f"  {c.cell}" for c in outcome.new]
    lines += seed_lines(outcome)
    status = outcome.exit_status
    if status == EXIT_PASS:
        lines.append(f"PASS: {units.count(outcome.checked, 'cell')} of {b_label} checked against {a_label}: none "
                     "slower beyond "
                     f"its threshold, lost more than {tolerance} of its test metric, or newly fails the "
                     "accuracy guard.")
    elif status != EXIT_REGRESSION or outcome.other_machine:
        lines.append(f"NOT PASSED (exit {status}): {_not_passed_because(outcome)}.")
    kinds = {r.kind for r in outcome.failures}
    return lines + [result_line(status, regression_word(status, "slower" in kinds, bool(kinds - {"slower"})))]


def seed_lines(outcome) -> list[str]:
    """The guard's reference cells' test metric as the check judged it, the median over
    their training seeds, where the table shows each seed's own (a failure says it already)."""
    failed = {r.comparison.cell for r in outcome.failures if r.kind == "accuracy"}
    judged = [f"{cell} test {metric} {units.metric(a)} -> {units.metric(b)} over {seeds} seeds"
              for cell, (a, b, seeds, metric) in (outcome.over_seeds or {}).items() if cell not in failed]
    if not judged:
        return []
    return [f"OVER SEEDS: the accuracy guard's reference is judged on the median over its training seeds (the table "
            f"shows each seed's own): {'; '.join(judged)}."]


def _not_passed_because(outcome) -> str:
    """Why a check that found no regression does not pass, as the cells above say."""
    why = []
    if outcome.other_machine and not outcome.allow_other_machine:
        why.append("runs of two machines")
    if outcome.undecided and not outcome.allow_undecided:
        why.append("undecided cells (--allow-undecided passes them knowingly)")
    if outcome.failed:
        why.append("cells that crashed or were cut short (never passed)")
    if (outcome.missing or outcome.differing) and not outcome.allow_missing:
        why.append("cells missing or measured differently (--allow-missing passes them knowingly)")
    if not outcome.checked:
        why.append("no cell was decided, and a check that decided nothing never passes")
    return "; ".join(why) or "see the cells above"


RESULTS = {EXIT_PASS: "pass", EXIT_REGRESSION: "slower", 130: "interrupted"}


def verdict_document(status: int, lines: list[str]) -> dict:
    """What ``--format json`` adds to a verdict's document: the result a script reads (the
    word and exit status of the closing :func:`result_line`) and the lines that explain it."""
    last = lines[-1] if lines else ""
    word = last[len("RESULT: "):].rsplit(" (exit", 1)[0] if last.startswith("RESULT: ") else RESULTS.get(status)
    return {"result": word or "not passed", "exit_status": status, "lines": lines}


def paired_document(a_label: str, b_label: str, cells, verdict: dict, saved: str | None,
                    tolerance: float = DEFAULT_ACCURACY_TOLERANCE) -> str:
    """``ab`` / ``check --against`` with ``--format json``: the sides, one object per cell
    (the table's columns, and as numbers under ``values``), where the run was saved, and the verdict."""
    rows = [{**dict(zip(PAIRED_HEADERS, r)), "values": c.as_dict(tolerance)}
            for c, r in zip(cells, paired_rows(cells, tolerance))]
    return json.dumps({"a": a_label, "b": b_label, "cells": rows, "saved": saved, **verdict}, indent=2)


def regression_word(status: int, slower: bool, worse: bool) -> str | None:
    """What :func:`result_line` says of a regression that is not only speed (None: the
    status's own word)."""
    if status != EXIT_REGRESSION or not worse:
        return None
    return "slower and less accurate" if slower else "less accurate"


def result_line(status: int, word: str | None = None) -> str:
    """The last line of every verdict: one a script can rely on (``word``: what a regression
    was, when it is not only speed)."""
    return f"RESULT: {word or RESULTS.get(status, 'not passed')} (exit {status})"


def _missing_reason(c) -> str:
    if c.b is None:
        return "not in the checked run"
    if c.presence.startswith("not comparable"):
        return c.presence[len("not comparable: "):]
    if c.b.measured and c.b.shortfall:   # an interrupted run's cell: it read "ok: ", as if it had not failed
        return f"{c.b.shortfall} in the checked run"
    return f"{c.b.status}: {c.b.reason}"


# -- interleaved A/B ----------------------------------------------------------------------

PAIRED_HEADERS = ["cell", "pairs", "median A ms", "median B ms", "B/A [95% CI]", "p (min)", "test A", "test B",
                  "verdict"]


def _side_median(c, k: int) -> str:
    """The side's median over whole pairs of what the pairs compare (a process's median step,
    or its mean: ``PairedCell.statistic``): a process whose partner failed ran alone, not in turns."""
    medians = [pair[k]["step_time"][c.statistic] for pair in c.pairs if all(r.get("status") == "ok" for r in pair)]
    return units.ms(stats.percentile(medians, 50)) if medians else "-"


def stopped_verdict(c) -> str:
    """A cell's verdict with why its pairs stopped: ``undecided (time budget of 60 s spent
    after 4 pairs)``; a reason that already opens with the verdict says it once
    (``interrupted (Ctrl-C) after 5 pairs``)."""
    if not c.stopped:
        return c.verdict
    return c.stopped if c.stopped.startswith(c.verdict) else f"{c.verdict} ({c.stopped})"


def paired_rows(cells, tolerance: float = DEFAULT_ACCURACY_TOLERANCE) -> list[list]:
    """One row per cell of :data:`PAIRED_HEADERS`; the verdict says ``less accurate`` beside the
    speed's when B lost more than ``tolerance`` of the test metric (it read ``same``)."""
    rows = []
    for c in cells:
        j = c.judgement
        verdict = c.verdict
        if c.skipped:
            verdict = f"{c.verdict}: {c.skipped}"
        elif c.failure:
            verdict = f"failed: {c.failure.get('status')}: {short_reason(c.failure)}"
        elif c.stopped:
            verdict = stopped_verdict(c)
        verdict += ACCURACY_WORDS.get(c.accuracy(tolerance).verdict, "")   # also beside a budget's or Ctrl-C's stop
        p = "-" if j.p_value is None else f"{j.p_value:.3f} ({j.smallest_p:.3f})"
        rows.append([c.cell, j.pairs, _side_median(c, 0), _side_median(c, 1), units.ratio(j.ratio, j.interval), p,
                     units.metric(c.metric_of(0)), units.metric(c.metric_of(1)), verdict])
    return rows


def paired_table(cells, tolerance: float = DEFAULT_ACCURACY_TOLERANCE) -> str:
    """The terminal's table of an interleaved comparison: rows grouped by workload within 120
    columns, the verdict in a word (why a cell failed or did not run is in the closing lines;
    a cell B learned worse in is ``LESS ACCURATE``, its speed in B/A and the closing lines)."""
    groups: dict[str, list[list]] = {}
    for c, row in zip(cells, paired_rows(cells, tolerance)):
        word = stopped_verdict(c) if c.stopped and not (c.skipped or c.failure) else c.verdict
        found = c.accuracy(tolerance).verdict
        word = ACCURACY_WORDS[found][2:].upper() if found in ACCURACY_WORDS else word
        word = "OTHER TEST DATA" if found == OTHER_EXAMPLES else word   # within 120 columns
        groups.setdefault(c.cell.split("-")[0] + ":", []).append([summary.short_id(c.cell), *row[1:-1], word])
    return summary.grouped_table(list(groups.items()), PAIRED_HEADERS) if groups else "No cell was selected."


def pair_line(cell, record_a: dict, record_b: dict, label: str | None = None) -> str:
    """A progress line: one pair's medians and the verdict so far (``label``: what the pair
    compares, where the cell's id would name one side only)."""
    def side(r):   # what the pairs compare: the median step, or the mean (MEAN STEPS)
        return f"{units.ms(r['step_time'][cell.statistic])} ms" if r.get("status") == "ok" else r.get("status", "?").upper()

    j = cell.judgement
    return (f"[pair {len(cell.pairs)}] {label or cell.cell}: A {side(record_a)}, B {side(record_b)}; "
            f"B/A so far {units.ratio(j.ratio, j.interval)}: {cell.verdict}")


def paired_lines(a, b, outcome, lockstep: bool = True) -> list[str]:
    """The closing lines of an interleaved comparison: the sides, then the verdict."""
    lines = [f"A: {a.label}", f"B: {b.label}", _how_line(outcome.cells, lockstep)]
    allowed = " (allowed by --allow-undecided)" if outcome.allow_undecided else ""
    for verdict, what in (("slower", "SLOWER"), ("undecided", f"UNDECIDED{allowed}"), ("failed", "FAILED")):
        cells = outcome.having(verdict)
        if cells:
            lines.append(f"{what}: " + ", ".join(c.cell for c in cells))
    lines += [less_accurate_line(c, outcome.accuracy_tolerance) for c in outcome.less_accurate]
    lines += [f"ACCURACY UNDECIDED{allowed}: {metric_pairs_text(c, outcome.accuracy_tolerance)}"
              for c in outcome.accuracy_undecided]
    lines += failure_lines(outcome.having("failed"))
    if outcome.crashed_b and outcome.allow_missing:
        lines.append("--allow-missing does not pass a process of B that crashed: "
                     + ", ".join(c.cell for c in outcome.crashed_b))
    lines += [f"MISSING: {c.cell} ({c.skipped}): the other side's processes have nothing to be compared with"
              for c in outcome.having("missing")]
    lines += [f"Not run here: {c.cell} ({c.skipped})" for c in outcome.having("skipped")]
    allowed = " (allowed by --allow-missing)" if outcome.allow_missing else ""
    lines += [f"NOT COMPARABLE{allowed}: {c.cell} ({c.incomparable}): {OTHER_WORK}" for c in outcome.having("not comparable")]
    lines += [f"MISSING{allowed}: {a.label}'s matrix file selects {what}, which this tree's does not: those cells were "
              "measured on neither side (name them on the command line to check them)" for what in outcome.dropped]
    lines += [_accuracy_not_comparable_line(c, allowed) for c in outcome.accuracy_not_comparable]
    lines += setting_lines(a, b, outcome.cells) + examples_lines(outcome.cells)
    means = [c.cell for c in outcome.cells if c.pairs and c.statistic == "mean"]
    if means:
        lines.append(f"MEAN STEPS: {', '.join(means)}: the sides time steps in groups of other sizes (steps per "
                     "execution), so B/A and the medians shown compare each process's mean step, not its median.")
    lines += uneven_lines(outcome.cells)
    bound = [c.cell for c in outcome.cells if c.input_bound and c.lockstep and not c.failure]   # a failed one has no pair
    if bound:
        lines.append(f"INPUT-BOUND: {', '.join(bound)}: in lockstep a process's input pipeline fills while its "
                     "partner steps, which favours whichever side steps second; compare them with --no-lockstep.")
    status = outcome.exit_status
    if status == EXIT_PASS:
        lines.append(_pass_line(outcome))
    else:
        nothing = not outcome.decided and not outcome.less_accurate   # a loss of accuracy is decided
        lines.append(f"NOT PASSED (exit {status})" + (": no cell was decided" if nothing else ""))
    return lines + [result_line(status, regression_word(status, bool(outcome.having("slower")),
                                                        bool(outcome.less_accurate)))]


def _pass_line(outcome) -> str:
    """PASS, with the cells whose accuracy an --allow-* option let through."""
    unsure = len(outcome.accuracy_undecided)   # let through by --allow-undecided
    lost = (f"none judged to have lost more than {outcome.accuracy_tolerance:g} of its test metric, "
            f"{units.count(unsure, 'cell')} undecided on it (allowed by --allow-undecided)" if unsure else
            f"none lost more than {outcome.accuracy_tolerance:g} of its test metric")
    other = len(outcome.accuracy_not_comparable)   # let through by --allow-missing
    lost += (f", {units.count(other, 'cell')} not compared on it (other test examples, allowed by --allow-missing)"
             if other else "")
    return f"PASS: {units.count(outcome.decided, 'cell')} decided, none slower, {lost}."


def uneven_lines(cells) -> list[str]:
    """Lockstep cells whose sides' steps differ by more than :data:`UNEVEN` times."""
    uneven = [c for c in cells if c.lockstep and c.step_ratio and not 1 / UNEVEN <= c.step_ratio <= UNEVEN]
    if not uneven:
        return []
    return [f"UNEVEN: {', '.join(f'{c.cell} (steps B/A {c.step_ratio:.2f})' for c in uneven)}: in lockstep a side's "
            f"steps run slower beside a partner whose steps take more than {UNEVEN:g} times as long, so B/A "
            "understates the difference (its direction stands); --no-lockstep measures each side alone."]


def _how_line(cells, lockstep: bool) -> str:
    """How the pairs ran: in lockstep, except cells across processes (a cluster a side),
    whose sides run one after the other."""
    after = "one process of each side after the other, the first side alternating"
    if not any(c.pairs for c in cells):
        return "No pair ran: no cell could be measured on both sides."
    if not lockstep:
        how = f"Each pair ran {after} (--no-lockstep)"
    else:
        how = "Each pair ran one process of each side at once, taking turns step by step (lockstep)"
        apart = [f"{c.cell}, whose sides {c.apart or 'train across processes'}" for c in cells if c.pairs and not c.lockstep]
        if apart:
            how += f", except {'; '.join(apart)}; these ran {after}"
    return (f"{how}; the interval is Student's t on the pairs' log-ratios, the p a sign-flip test (exact; its "
            "smallest possible value in brackets). The median A and B columns are each side's over its processes, "
            "which the machine's drift moves between pairs, so that they may even disagree with B/A; B/A is the "
            "pairs', in which it cancels. Test A and B are means over the pairs' training seeds.")


# What a cell's accuracy verdict adds to its speed's in a row (the table's word: upper case).
ACCURACY_WORDS = {"worse": ", less accurate", "undecided": ", accuracy undecided",
                  OTHER_EXAMPLES: ", accuracy not comparable"}


def less_accurate_line(c, tolerance: float) -> str:
    """A cell whose side B learned worse than A beyond the tolerance."""
    metric = c.metric[0]
    if c.metric_of(1) is None:
        return (f"LESS ACCURATE: {c.cell}: test {metric} A {units.metric(c.metric_of(0))}, B none (B's processes "
                f"reported no {metric})")
    other = examples_differ(c.pairs)   # judged all the same: a loss is never let through
    return f"LESS ACCURATE: {metric_pairs_text(c, tolerance)}" + (
        f" (on other test examples, {other}: the sides' test metrics were measured on different examples)"
        if other else "")


def _accuracy_not_comparable_line(c, allowed: str) -> str:
    """Why a cell's test metrics do not compare: one side's own processes tested on other
    examples from one another (its data() is not the same in each process), or the sides did."""
    varies = examples_vary(c.pairs)
    if varies:
        who, whose = (f"side {next(iter(varies))}'s", "its") if len(varies) == 1 else ("both sides'", "their")
        return (f"ACCURACY NOT COMPARABLE{allowed}: {c.cell}: {who} own processes tested on other examples from one "
                f"another ({'; '.join(f'{s} {h}' for s, h in varies.items())}), though each loads its data with the "
                f"cell's seed: {whose} data() does not return the same test examples in every process (an unseeded "
                "split or shuffle, a set's order, the global random state); derive them from the seed data() is given. "
                "Its speed verdict stands")
    return (f"ACCURACY NOT COMPARABLE{allowed}: {c.cell}: the sides' test examples differ ({examples_differ(c.pairs)}), "
            "so their test metrics were measured on other examples and B's says nothing of B's model against A's "
            "(a change to data(), to the data folder, or to an output synthetic labels follow); its speed verdict "
            "stands")


def metric_pairs_text(c, tolerance: float) -> str:
    """A cell's test metric on each side and what the pairs say of B against A: their mean
    difference B - A and its interval, and the loss the tolerance allows."""
    metric, direction = c.metric
    found = c.accuracy(tolerance)
    change = "no pair to compare"
    if found.differences:
        change = f"B - A {stats.mean(found.b_minus_a):+.3f}"
    if found.b_minus_a_interval:
        lo, hi = found.b_minus_a_interval
        change += f" [95% CI {lo:+.3f}, {hi:+.3f}] over {units.count(len(found.differences), 'pair')}"
    allowed = f"{tolerance:g} of A's value, {found.limit:.3f}" if direction == "lower" else f"{tolerance:g}"
    text = (f"{c.cell}: test {metric} A {units.metric(c.metric_of(0))}, B {units.metric(c.metric_of(1))} "
            f"(means); {change}; a loss beyond --accuracy-tolerance {allowed} is a regression")
    if found.verdict == "undecided":
        text += (": the interval reaches both sides of it (the pairs' differences spread: each pair trains "
                 "its own seed, and some cells' processes differ at one seed); more pairs (--max-pairs) or a wider "
                 "--accuracy-tolerance decide it")
    return text


OTHER_WORK = ("the versions' matrix files set another batch, so that a step is another amount of work, or another "
              "number of steps, so that in lockstep one side steps alone once the other has ended; give the setting on "
              "the command line (--global-batch, --scaling, --epochs, --steps-per-epoch) to measure both with one")


def failure_lines(cells) -> list[str]:
    """Every failed process of ``cells``, with its reason as :func:`short_reason` gives it: its
    first and last lines (a tf.py_function's error had printed TensorFlow's whole stack on one
    line); the stored record keeps the whole reason."""
    return [f"  {c.cell}, pair {number}, side {side}: {r.get('status')}: {short_reason(r)}"
            for c in cells for number, pair in enumerate(c.pairs, 1)
            for side, r in zip("AB", pair) if r.get("status") not in ("ok", "skipped")] + [
            f"  {c.cell}: {c.skipped}" for c in cells if c.verdict == "missing"] + [
            f"  {c.cell}: not comparable ({c.incomparable}): {OTHER_WORK}" for c in cells if c.verdict == "not comparable"]
