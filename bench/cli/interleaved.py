"""``check --against``, ``ab``, ``bisect`` and ``plan``: two sides measured now, interleaved, and the pairs it takes."""

from __future__ import annotations

import argparse
import os
import sys

import distbench.loops as loops
from distbench import plugins, strategies
from distbench.analysis import compare, pairs
from distbench.cli.args import accuracy_tolerance_of, emit, threshold_of
from distbench.cli.stored import check_baseline, history, this_machine_id
from distbench.core.config import CellSpec, fraction
from distbench.core.errors import UserError
from distbench.render import bisect_lines, plan_table, run_table, summary, tables, verdicts
from distbench.session import bisect, interleave, options, plan
from distbench.session.side import Side, parse_side, with_inherited
from distbench.session.paired_run import Pairs, run_pairs
from distbench.storage.files import Storage
from distbench.workloads.registry import WORKLOADS


# What each form of check reads; any other option given to it is refused, not ignored.
BASELINE_ONLY = {"run": "--run", "cell_threshold": "--cell-threshold", "allow_other_machine": "--allow-other-machine"}
AGAINST_ONLY = {"min_pairs": "--min-pairs", "max_pairs": "--max-pairs", "budget": "--budget"}
SELECTION = ("workload", "strategy", "loop", "results")


def cmd_check(args: argparse.Namespace) -> int:
    if args.against is not None and not args.against.strip():
        raise UserError("check --against needs a git revision (a commit, branch or tag, e.g. HEAD~1); received an "
                        "empty one.")
    if args.against is None:
        refused = [flag for name, flag in AGAINST_ONLY.items() if getattr(args, name) is not None]
        refused += ["--no-lockstep"] if args.no_lockstep else []   # how pairs run: stored runs have none
        refused += [options.BY_NAME[name].cli for name in args.given if name not in SELECTION]
        _refuse(refused, "--baseline", "a stored run against a stored baseline",
                "--run, --threshold, --cell-threshold, --accuracy-tolerance, --workload, --strategy, --loop, "
                "--results, --allow-undecided, --allow-missing, --allow-other-machine, --format")
        return check_baseline(args)
    refused = [flag for name, flag in BASELINE_ONLY.items() if getattr(args, name) not in (None, [], False)]
    _refuse(refused, "--against", "two versions measured now",
            "the run options of `distbench run` (--workload, --data, ...) but --repeats, --guard-seeds, --overhead "
            "and --full-table, and --threshold, --accuracy-tolerance, --min-pairs, --max-pairs, --budget, "
            "--no-lockstep, --allow-undecided, --allow-missing, --format")
    return _interleaved(args, Side("A", f"revision {args.against}"), Side("B", "this working tree"))


def _refuse(flags: list[str], form: str, what: str, valid: str) -> None:
    if flags:
        raise UserError(f"check {form} ({what}) does not take {', '.join(flags)}; valid with {form}: {valid}.")


def cmd_ab(args: argparse.Namespace) -> int:
    return _interleaved(args, *with_inherited(parse_side("A", args.a, options.spec_changes),
                                              parse_side("B", args.b, options.spec_changes)))


def _interleaved(args: argparse.Namespace, a: Side, b: Side) -> int:
    """Runs the selection as interleaved pairs of sides A and B; prints the verdicts."""
    settings = pair_settings(args)
    run = run_pairs(options.from_namespace(args), a, b, settings, pair_progress,
                    getattr(args, "against", None), args.matrix_file, args.given)
    outcome = pairs.outcome(run.cells, args.allow_undecided, args.allow_missing, settings.accuracy_tolerance,
                            run.dropped)
    status = 130 if run.interrupted else outcome.exit_status
    lines = ([verdicts.result_line(130)] if run.interrupted else
             verdicts.paired_lines(run.a, run.b, outcome, run.lockstep))
    print()
    if args.format == "json":
        emit(verdicts.paired_document(run.a.label, run.b.label, run.cells, verdicts.verdict_document(status, lines),
                                      run.saved and str(run.saved), settings.accuracy_tolerance))
    elif args.format == "table":
        emit(verdicts.paired_table(run.cells, settings.accuracy_tolerance))
    else:
        emit(tables.render_rows(verdicts.PAIRED_HEADERS, verdicts.paired_rows(run.cells, settings.accuracy_tolerance),
                                args.format))
    if run.saved:
        print("\n" + summary.saved_line(run.saved))
    elif not args.no_save and run.cells:   # a non-chief task of a TF_CONFIG cluster: its chief saves
        print("\n" + run_table.NOT_SAVED)
    if run.interrupted:
        print("\n" + (run_table.INTERRUPTED if run.saved else run_table.INTERRUPTED_UNSAVED), file=sys.stderr)
    else:
        print()
    for line in summary.wrap_lines(lines):
        print(line)
    return status


def cmd_bisect(args: argparse.Namespace) -> int:
    """The first commit after GOOD, up to BAD, whose cells regressed from GOOD's (exit 0 when
    one is named or BAD did not regress; 3 when a step could not decide or failed)."""
    if args.allow_undecided or args.allow_missing or args.format != "table":
        raise UserError("bisect prints its steps as lines and stops at an undecided step (a failed one is passed "
                        "over): it does not "
                        "take --allow-undecided, --allow-missing or --format; each step's run is stored in full.")
    tolerance = accuracy_tolerance_of(args, compare.DEFAULT_ACCURACY_TOLERANCE)
    found = bisect.bisect(options.from_namespace(args), args.good, args.bad, pair_settings(args), args.matrix_file,
                          args.given, pair_progress,
                          lambda step, number, total: print(summary.wrap(bisect_lines.step_line(
                              number, step, total, args.find, tolerance)), flush=True),
                          args.find)
    print()
    for line in summary.wrap_lines(bisect_lines.closing_lines(found)):
        print(line)
    return found.exit_status


def pair_settings(args: argparse.Namespace) -> Pairs:
    def given(value, default):
        return default if value is None else value

    if args.budget is not None and not args.budget > 0:
        raise UserError(f"--budget must be > 0 seconds (the time for all pairs of all cells; leave it out for no "
                        f"limit); received {args.budget:g}.")
    return Pairs(threshold_of(args, interleave.DEFAULT_THRESHOLD), given(args.min_pairs, interleave.DEFAULT_MIN_PAIRS),
                 given(args.max_pairs, interleave.DEFAULT_MAX_PAIRS), args.budget,
                 lockstep=not getattr(args, "no_lockstep", False),
                 accuracy_tolerance=accuracy_tolerance_of(args, compare.DEFAULT_ACCURACY_TOLERANCE))


def cmd_plan(args: argparse.Namespace) -> int:
    """Pairs needed per cell to catch ``--detect`` beyond the threshold, from stored pair noise."""
    effect = fraction(args.detect, "--detect")
    threshold = threshold_of(args, interleave.DEFAULT_THRESHOLD)
    if not 0 < args.power < 1:
        raise UserError(f"--power must be between 0 and 1; received {args.power}.")
    if not os.path.isdir(args.results):
        raise UserError(f"No results folder {args.results!r}: plan reads the interleaved runs stored there; give "
                        "--results DIR (a folder `distbench ab` or `check --against` saved into).")
    storage = Storage(args.results)
    machine = this_machine_id()
    noise = pairs.pair_noise(history(storage, machine), lockstep=not args.no_lockstep)
    _check_selection(args, noise)
    wanted = [c for c in noise if _selected(c, args)]
    plans = pairs.plan(noise, wanted, effect, threshold, args.power)
    print(plan_table.plan_text(plans, effect, threshold, machine, args.results))
    return 0


def _check_selection(args: argparse.Namespace, noise) -> None:
    """Unknown strategies and loops are refused as ``run`` refuses them; a workload must be
    registered or named by a stored cell. References (``models.digits:Digits``, the matrix
    file's) are loaded and replaced in ``args`` by the names their classes register."""
    chosen = {"workload": args.workload, "strategy": args.strategy, "loop": args.loop}
    plugins.load_selection(chosen)
    args.workload, args.strategy, args.loop = chosen["workload"], chosen["strategy"], chosen["loop"]
    plan.selected(args.strategy, strategies.STRATEGIES)
    plan.selected(args.loop, loops.LOOPS)
    stored = sorted({cell.split("-")[0] for cell in noise})
    registered = WORKLOADS.names()
    unknown = [w for w in args.workload or () if w not in {*stored, *registered}]
    if unknown:
        raise UserError(f"Unknown workload {unknown[0]!r} for plan, which reads stored interleaved runs by cell name; "
                        f"stored here: {', '.join(stored) or 'none'}; registered: {', '.join(registered)}.")


def _selected(cell: str, args: argparse.Namespace) -> bool:
    parts = cell.split("-")
    spec = CellSpec(parts[0], parts[1], parts[2] if len(parts) > 2 else None)
    return all(not chosen or value in chosen for chosen, value in
               ((args.workload, spec.workload), (args.strategy, spec.strategy), (args.loop, spec.loop)))


def pair_progress(cell, record_a, record_b) -> None:
    print(verdicts.pair_line(cell, record_a, record_b), flush=True)
