"""``compare``, ``check --baseline`` and ``report``: the commands that read stored runs."""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import re
import sys

from distbench.analysis import check, compare
from distbench.cli.args import accuracy_tolerance_of, emit, threshold_of
from distbench.core.config import fraction
from distbench.core.errors import UserError
from distbench.render import comparison_table, run_table, summary, verdicts
from distbench.render.report import write_report, wrote_line
from distbench.storage.files import Storage, load, load_history
from distbench.storage import machine


def load_ref(storage, ref: str):
    return load(storage.resolve(ref, this_machine_id))


@functools.lru_cache(maxsize=1)
def this_machine_id() -> str:
    return machine.this_machine_id()


def _noise(storage, a, b) -> tuple[dict, dict]:
    """Each run's machine's between-run noise (:func:`~distbench.analysis.compare.comparison_noise`);
    one machine's history read (and its unreadable runs named) once."""
    history_a = history(storage, a.machine_id)
    history_b = history_a if b.machine_id == a.machine_id else history(storage, b.machine_id)
    return compare.comparison_noise(history_a, history_b, a, b)


def history(storage: Storage, machine_id: str) -> list:
    """A machine's readable stored runs; each unreadable one named on stderr, and skipped."""
    runs, unreadable = load_history(storage.runs(machine_id))
    for reason in unreadable:
        print(comparison_table.skipped_history_line(reason), file=sys.stderr)
    return runs


def cmd_compare(args: argparse.Namespace) -> int:
    storage = Storage(args.results)
    a, b = _compared(storage, args.a), _compared(storage, args.b)
    _two_runs(("A", args.a, a), ("B", args.b, b), "`distbench compare latest~1 latest`")
    noise_a, noise_b = _noise(storage, a, b)
    comparison = compare.compare_runs(a, b, threshold_of(args, stored_default(args)), noise_a=noise_a,
                                      noise_b=noise_b)
    _context(comparison, args.format)
    emit(comparison_table.comparison_text(comparison, args.format, worse=check.learned_worse(comparison)))
    return 0


def _context(comparison, fmt: str) -> None:
    """Beside a csv or Markdown table (on stderr): what the runs are and how their machines differ."""
    if fmt in ("csv", "markdown"):
        print("\n".join(comparison_table.context_lines(comparison)))


def _compared(storage: Storage, ref: str):
    """``compare``'s run for ``ref``: ``latest`` and ``latest~N`` count the runs that are not
    interleaved, as ``check --baseline``'s latest does (``ab`` and ``check --against`` save
    theirs in the same folder, and `compare latest~1 latest` after one was refused: no cells
    in common); an interleaved run is named by its number. A run that cannot be read on the
    way is refused, not passed over."""
    match = re.fullmatch(r"latest(?:~(\d+))?", ref)
    latest = load_ref(storage, "latest" if match else ref)
    if not match or not latest.interleaved and not match.group(1):
        return latest
    back = int(match.group(1) or 0)
    found = next(itertools.islice(_plain_runs(storage, latest), back, None), None)
    if found is None:   # counting every run instead named another run, or the newest itself
        plain = sum(1 for _ in _plain_runs(storage, latest))
        raise UserError(f"Run {ref!r} does not exist: machine {latest.machine_id} has {plain} stored run(s) that are "
                        "not interleaved, which latest~N counts (name an ab or check --against run by its number).")
    return found


def _plain_runs(storage: Storage, latest):
    """The runs of ``latest``'s machine that are not interleaved, newest first, each read as
    it is reached (one that cannot be read is refused, not passed over)."""
    return (run for run in map(load, reversed(storage.runs(latest.machine_id))) if not run.interleaved)


def _two_runs(first: tuple, second: tuple, example: str) -> None:
    """UserError when both references name one run: a run compared with itself measures no
    change (a check of it would pass whatever the code does)."""
    (flag_a, ref_a, a), (flag_b, ref_b, b) = first, second
    same = "the same run" if a.path.resolve() == b.path.resolve() else (
        "the same measurements (one a copy of the other)" if a.measurements == b.measurements else "")
    if same:
        raise UserError(f"{flag_a} {ref_a} and {flag_b} {ref_b} are {same} ({a.label}); a run compared with "
                        f"itself measures no change. Give two different runs, e.g. {example}.")


def stored_default(args: argparse.Namespace) -> float:
    """The threshold between stored runs when --threshold is not given: the matrix file's, else 0.25."""
    found = getattr(args, "stored_threshold", None)
    return compare.DEFAULT_THRESHOLD if found is None else found   # 0 is refused, not read as 0.25


def _cell_thresholds(items: list[str]) -> dict[str, float]:
    overrides = {}
    for item in items:
        cell, sep, value = item.partition("=")
        if not sep or not cell:
            raise UserError(f"Bad --cell-threshold {item!r}: use CELL=X, e.g. reuters_cnn-virtual-fit=0.4 or =40%.")
        if cell in overrides:   # the last had silently won
            raise UserError(f"--cell-threshold gives {cell} twice ({overrides[cell]:g} and {value}); give it once.")
        overrides[cell] = fraction(value, f"--cell-threshold {cell}")   # inf: every cell "same"
    return overrides


def cmd_report(args: argparse.Namespace) -> int:
    storage = Storage(args.results)
    try:
        run = load_ref(storage, args.run)
    except UserError as exc:   # the latest cut short (a full disk): the history is still there to report
        if args.run != "latest" or not storage.runs():
            raise
        raise UserError(f"{exc} Or report an earlier run: --run N.") from None
    histories = {folder.name: history(storage, folder.name) for folder in storage.machine_folders()}
    # Beside the results folder (the project's, from a sub-folder too), not in the folder it runs in.
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.results)), "reports", run.machine_id)
    markdown, page = write_report(run, histories, out, threshold_of(args, stored_default(args)), args.reference)
    if run.measured_on:
        print(summary.wrap(run_table.elsewhere_line(run)))
    print(summary.wrap(wrote_line(page, markdown)))
    return 0


def _latest_plain(storage: Storage, ref: str | None):
    """``--run``'s run, and how to name it; without one, the latest that is not an interleaved run (``check
    --against`` and ``ab`` save theirs in the same folder: the latest was nearly always one,
    and refused). Nothing is passed over unsaid: a run after it that cannot be read is
    refused (it may be the one to check), and an interrupted one is checked (its missing
    cells fail the check)."""
    latest = load_ref(storage, ref or "latest")
    if ref is not None or not latest.interleaved:
        return latest, ref or "latest"
    run = next(_plain_runs(storage, latest), None)
    return (run, f"{run.number} (the latest that is not interleaved)") if run else (latest, "latest")


def check_baseline(args: argparse.Namespace) -> int:
    """``check --baseline``: the latest (or ``--run``) stored run against a stored baseline."""
    tolerance = accuracy_tolerance_of(args, compare.DEFAULT_ACCURACY_TOLERANCE)
    overrides = _cell_thresholds(args.cell_threshold)
    storage = Storage(args.results)
    baseline, (current, run_ref) = load_ref(storage, args.baseline), _latest_plain(storage, args.run)
    _two_runs(("--baseline", args.baseline, baseline), ("--run", run_ref, current),
              "`check --baseline N` with a run saved after N")
    for flag, ref, run in (("--baseline", args.baseline, baseline), ("--run", run_ref, current)):
        if run.interleaved:
            plain = [f"{r.number:04d}" for r in load_history(storage.runs(run.machine_id))[0]
                     if not r.interleaved and not r.interrupted][-5:]
            those = f"the latest of machine {run.machine_id}: {', '.join(plain)}" if plain else "it has none stored"
            raise UserError(f"{flag} {ref} is run {run.number}, an interleaved run (`check --against` or `ab`, cells "
                            "<id>@A and <id>@B, judged when it ran); check --baseline compares runs of `distbench run` "
                            f"or `pytest --benchmark-only`: give {flag} N of one of those ({those}).")
    unknown = sorted(set(overrides) - set(baseline.cells()) - set(current.cells()))
    if unknown:
        known = sorted(set(baseline.cells()) | set(current.cells()))
        raise UserError(f"--cell-threshold names cells in neither run: {', '.join(unknown)}; their cells: "
                        f"{', '.join(known)}.")
    noise_a, noise_b = _noise(storage, baseline, current)
    comparison = compare.compare_runs(baseline, current, threshold_of(args, stored_default(args)), overrides,
                                      noise_a, noise_b)
    comparison = compare.selected(comparison, {k: args.given.get(k) for k in ("workload", "strategy", "loop")})
    outcome = check.check(comparison, tolerance, args.allow_undecided, args.allow_missing,
                          args.allow_other_machine)
    lines = verdicts.check_lines(outcome, baseline.label, current.label, tolerance)
    worse = {r.comparison.cell for r in outcome.failures if r.kind in ("accuracy", "guard")}
    _context(comparison, args.format)
    emit(comparison_table.comparison_text(comparison, args.format, verdicts.verdict_document(outcome.exit_status, lines),
                                          worse))
    print()
    for line in summary.wrap_lines(lines):
        print(line)
    return outcome.exit_status
