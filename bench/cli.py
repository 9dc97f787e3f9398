"""The command line: ``python -m bench`` (installed as ``distbench``).

User errors (``UserError``) are caught here, in one place, and become one line on
stderr and exit status 2; no traceback for a typo. ``check`` exits 1 on a regression.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys

from bench import guard, options
from bench.errors import UserError

DESCRIPTION = "Benchmark TensorFlow distributed training: workloads x strategies x training loops."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distbench", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_running_commands(sub)
    _add_stored_commands(sub)
    _add_interleaved_commands(sub)
    return parser


def _add_running_commands(sub) -> None:
    """list, run, tune: what runs cells."""
    p = sub.add_parser("list", help="workloads, strategies (available here or why not), loops, stored runs")
    _add_results_arg(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run a selection of cells, each in its own process, and save it")
    _add_running_args(p)
    options.add_to_argparse(p, ("overhead",))
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("tune", help="rank loops, steps per execution and XLA for one workload by speed")
    _add_running_args(p)
    p.add_argument("--confirm-pairs", type=int, default=6, metavar="N",
                   help="interleaved pairs (at most) to test the winner against plain fit (default 6; 0: skip)")
    p.set_defaults(func=cmd_tune)


def _add_stored_commands(sub) -> None:
    """compare, report: what reads stored runs (check is with the interleaved commands)."""
    p = sub.add_parser("compare", help="compare two stored runs cell by cell")
    p.add_argument("a", help="run A: a file path, a run number, latest or latest~N")
    p.add_argument("b", help="run B (the newer one, usually)")
    _add_verdict_args(p)
    _add_results_arg(p)
    _add_format_arg(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="write a Markdown report with PNG charts")
    p.add_argument("--run", default="latest", help="the run to report (default: latest)")
    p.add_argument("--out", default=None, help="output folder (default: reports/<machine-id>)")
    _add_verdict_args(p)
    _add_results_arg(p)
    p.set_defaults(func=cmd_report)


def _add_interleaved_commands(sub) -> None:
    """check, ab, plan."""
    p = sub.add_parser("check", help="exit 1 on a regression: against a stored baseline, or measured now "
                                     "against a git revision (exit 3: undecided, crashed or missing cells)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--baseline", help="a stored baseline run (path, number, latest~N)")
    which.add_argument("--against", metavar="REV", help="measure this tree against git revision REV now, "
                       "interleaved process by process")
    p.add_argument("--run", default="latest", help="with --baseline: the run to check (default: latest)")
    p.add_argument("--cell-threshold", action="append", default=[], metavar="CELL=X",
                   help="per-cell slow-down threshold, e.g. reuters_cnn-virtual-fit=0.4 (repeatable)")
    p.add_argument("--accuracy-tolerance", type=float, default=None,
                   help="largest acceptable loss of the guard's test metric (default 0.05)")
    _add_interleaved_args(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("ab", help="compare two configurations of this tree now, interleaved process by process")
    p.add_argument("--a", default="", help='side A: run options and NAME=VALUE environment, e.g. "--intra-op-threads 1"')
    p.add_argument("--b", required=True, help='side B, e.g. "--intra-op-threads 2" or "TF_ENABLE_ONEDNN_OPTS=0"')
    _add_interleaved_args(p)
    p.set_defaults(func=cmd_ab)

    p = sub.add_parser("plan", help="how many interleaved pairs it takes to detect a slow-down here")
    p.add_argument("--detect", required=True, metavar="EFFECT", help="the slow-down to catch: 10%% or 0.10")
    p.add_argument("--threshold", type=float, default=None,
                   help="the band's edge the interval must clear (default: the interleaved default, 0.05)")
    p.add_argument("--power", type=float, default=0.8, help="chance of catching it (default 0.8)")
    options.add_to_argparse(p, ("workload", "strategy", "loop", "results"))
    p.set_defaults(func=cmd_plan)


RUN_OPTIONS = tuple(o.name for o in options.OPTIONS if o.name != "overhead")


def _add_running_args(p: argparse.ArgumentParser) -> None:
    """What run and tune share: every run option of the one option table, and the format."""
    options.add_to_argparse(p, RUN_OPTIONS)
    _add_format_arg(p)


def _add_interleaved_args(p: argparse.ArgumentParser) -> None:
    """The selection and run options, the verdict's threshold and the pairs' budget."""
    from bench import ab

    options.add_to_argparse(p, tuple(n for n in RUN_OPTIONS if n not in ("repeats", "guard_seeds")))
    p.add_argument("--threshold", type=float, default=None,
                   help=f"relative change that counts (default: {ab.DEFAULT_THRESHOLD} interleaved, "
                        "0.25 against a stored baseline)")
    p.add_argument("--min-pairs", type=int, default=ab.DEFAULT_MIN_PAIRS, help="pairs before a first verdict")
    p.add_argument("--max-pairs", type=int, default=ab.DEFAULT_MAX_PAIRS,
                   help="pairs at most per cell; then undecided")
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS", help="time for all pairs of all cells")
    p.add_argument("--allow-undecided", action="store_true", help="do not fail on undecided cells (exit 0, listed)")
    p.add_argument("--allow-missing", action="store_true",
                   help="do not fail on cells that crashed, are missing, or were measured differently (exit 0, listed)")
    _add_format_arg(p)


def _add_results_arg(p: argparse.ArgumentParser) -> None:
    options.add_to_argparse(p, ("results",))


def _add_format_arg(p: argparse.ArgumentParser) -> None:
    from bench.tables import FORMATS

    p.add_argument("--format", default="table", choices=FORMATS, help="output format (default: table)")


def _add_verdict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold", type=float, default=None,
                   help="relative change of the median that counts (default 0.25 between stored runs)")


def cmd_list(args: argparse.Namespace) -> int:
    import bench.loops as loops
    import strategies
    import workloads
    from bench.storage import Storage
    from strategies import hardware

    hw = hardware.detect()
    print(f"Devices (TensorFlow's physical devices; each cell probes its own before it runs): {hw.summary()}")
    print("Workloads:")
    for name in workloads.WORKLOADS.names():
        print(f"  {name:14} {workloads.get(name).summary}")
    print("Strategies:")
    for name in strategies.STRATEGIES.names():
        adapter = strategies.get(name)
        avail = adapter.availability(hw)
        state = "available" if avail.ok else "unavailable"
        why = f" ({avail.reason})" if avail.reason else ""
        print(f"  {name:14} {state}{why}: {adapter.summary}")
    print("Loops:")
    for name in loops.LOOPS.names():
        print(f"  {name:14} {loops.get(name).summary}")
    runs = Storage(args.results).runs()
    print(f"Stored runs in {args.results}/: {len(runs) or 'none'}")
    for path in runs:
        print(f"  {path.parent.name}/{path.name}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench.session import Session

    session = Session.from_options(options.from_namespace(args))
    session.check_writable()
    session.run_all(_Progress())
    return _finish(session, args.format)


def _finish(session, fmt: str | None) -> int:
    """Judges, prints (as ``fmt``; None: no table) and saves a session's run; the exit status."""
    session.finish()
    print()
    if fmt:
        print(session.summary(fmt))
    if session.saved:
        print(f"\nSaved {session.saved}")
    elif not session.values["no_save"] and session.records:
        print("\nNot saved: this process is a non-chief worker of a TF_CONFIG cluster; the chief saves the run.")
    if session.interrupted:
        print("distbench: interrupted; the cells that finished were saved, marked as an interrupted run",
              file=sys.stderr)
        return 130
    return 1 if any(r["status"] == "error" for reps in session.records.values() for r in reps) else 0


def cmd_tune(args: argparse.Namespace) -> int:
    import bench.loops as loops
    import strategies
    import workloads
    from bench import tables, tune
    from bench.plan import selected
    from bench.session import Session

    if args.target:
        raise UserError("tune ranks configurations by step time; for time to target run "
                        "`python -m bench run --target ...` with each configuration.")
    if not args.workload or len(args.workload) != 1 or workloads.get(args.workload[0]).kind != "training":
        trainable = [w for w in workloads.WORKLOADS.names() if workloads.get(w).kind == "training"]
        raise UserError(f"tune needs exactly one training workload: --workload {' or '.join(trainable)}; "
                        f"received {args.workload or 'none'}.")
    session = Session.from_options(options.from_namespace(args), repeats_default=3)
    chosen = selected(args.strategy or ["default"], strategies.STRATEGIES)
    candidates, left_out = tune.candidates(args.workload[0], chosen, selected(args.loop, loops.LOOPS),
                                           session.base, session._suite().hw)
    session.plan = guard.with_replicates(candidates, session.values["guard_seeds"])
    session.check_writable()
    session.run_all(_Progress())
    status = _finish(session, None)
    ranked = tune.rank(session.results, {c.id for c in candidates})
    confirmed = _confirm(session, tune.confirmation(ranked), args.confirm_pairs)
    print(tables.render_rows(tables.TUNE_HEADERS, tables.tune_rows(ranked), args.format))
    if args.format != "json":
        print("\n" + tables.tune_verdict(ranked, confirmed))
        for line in left_out + [f"{c}: {r.status}: {r.reason}" for c, r in session.results.items() if not r.measured]:
            print(f"  not ranked: {line}")
    return status


def _confirm(session, sides, pairs: int):
    """The interleaved test of tune's winner against plain fit (None when not run)."""
    if sides is None or pairs < 2:
        return None
    from bench import ab

    plain, a, b = sides
    suite = session._suite()
    engine = ab.Interleaved(a, b, lambda spec, side: suite.run(spec, side.env, side.root),
                            min_pairs=min(ab.DEFAULT_MIN_PAIRS, pairs), max_pairs=pairs, progress=_pair_progress)
    print(f"\nConfirming the winner: {b.label} against {a.label}, interleaved ...", flush=True)
    return engine.run([plain], suite.skip_reason)[0]


class _Progress:
    """Progress lines while a session runs (the CLI prints; the session only reports)."""

    def __call__(self, k, n, spec, record, elapsed) -> None:
        from bench.tables import outcome

        print(f"[{k}/{n}] {spec.process_id}: {outcome(record)} ({elapsed:.0f} s elapsed)", flush=True)

    def overhead(self, spec) -> None:
        print(f"[overhead] {spec.id}: the harness's cell against a bare TensorFlow loop, process pairs ...", flush=True)

    def pair(self, cell, record_a, record_b) -> None:
        _pair_progress(cell, record_a, record_b)


def _load_ref(storage, ref: str):
    from bench.storage import load

    return load(storage.resolve(ref, _this_machine_id))


@functools.lru_cache(maxsize=1)
def _this_machine_id() -> str:
    from bench.machine import machine_id, machine_info

    return machine_id(machine_info())


def _with_matrix_file(args: argparse.Namespace) -> None:
    """Fills the options the command line left unset from the project's matrix file
    (``[tool.distbench]``, :mod:`bench.matrix_file`), found from the working directory up;
    ``results`` defaults to ``results`` (relative to the working directory)."""
    from bench import matrix_file

    path = matrix_file.find()
    declared = matrix_file.read(path) if path else {}
    args.matrix_file = str(path) if path else None
    merged = matrix_file.merge(declared, {name: getattr(args, name, None) for name in declared})
    for name, value in merged.items():
        if hasattr(args, name):
            setattr(args, name, value)
    if getattr(args, "results", "") is None:
        args.results = options.BY_NAME["results"].default


def _threshold(args: argparse.Namespace, default: float) -> float:
    threshold = default if args.threshold is None else args.threshold
    if threshold <= 0:
        raise UserError(f"Threshold must be > 0 (a relative change, 0.25 = 25%); received {threshold}.")
    return threshold


def _noise(storage, *runs) -> list[dict]:
    """Each run's machine's between-run noise, from the stored runs of that machine."""
    from bench.compare import history_noise
    from bench.storage import load

    return [history_noise([load(p) for p in storage.runs(run.machine_id)]) for run in runs]


def _print_comparison(comparison, fmt: str) -> None:
    from bench import tables

    if fmt == "json":
        print(json.dumps({
            "a": comparison.a.label, "b": comparison.b.label,
            "a_interrupted": comparison.a.interrupted, "b_interrupted": comparison.b.interrupted,
            "machine_diff": [{"field": k, "a": a, "b": b} for k, a, b in comparison.machine_diff],
            "cells": [c.as_dict() for c in comparison.cells],
        }, indent=2))
        return
    if fmt == "table":
        print(tables.run_heading("A", comparison.a))
        print(tables.run_heading("B", comparison.b))
        print(tables.machine_line(comparison.machine_diff))
        print()
    print(tables.render_rows(tables.COMPARE_HEADERS, tables.comparison_rows(comparison.cells), fmt))
    if fmt == "table" and comparison.compared:
        print("\n" + tables.history_note())


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare import DEFAULT_THRESHOLD, compare_runs
    from bench.storage import Storage

    storage = Storage(args.results)
    a, b = _load_ref(storage, args.a), _load_ref(storage, args.b)
    noise_a, noise_b = _noise(storage, a, b)
    _print_comparison(compare_runs(a, b, _threshold(args, DEFAULT_THRESHOLD), noise_a=noise_a, noise_b=noise_b),
                      args.format)
    return 0


def _cell_thresholds(items: list[str]) -> dict[str, float]:
    overrides = {}
    for item in items:
        cell, _, value = item.partition("=")
        try:
            overrides[cell] = float(value)
        except ValueError:
            raise UserError(f"Bad --cell-threshold {item!r}: use CELL=X, e.g. reuters_cnn-virtual-fit=0.4.") from None
    return overrides


def cmd_check(args: argparse.Namespace) -> int:
    if args.against:
        return _interleaved(args, *_against_sides(args))
    from bench import compare, tables
    from bench.storage import Storage

    storage = Storage(args.results)
    baseline, current = _load_ref(storage, args.baseline), _load_ref(storage, args.run)
    overrides = _cell_thresholds(args.cell_threshold)
    unknown = sorted(set(overrides) - set(baseline.cells()) - set(current.cells()))
    if unknown:
        raise UserError(f"--cell-threshold names cells in neither run: {', '.join(unknown)}.")
    noise_a, noise_b = _noise(storage, baseline, current)
    comparison = compare.compare_runs(baseline, current, _threshold(args, compare.DEFAULT_THRESHOLD), overrides,
                                      noise_a, noise_b)
    _print_comparison(comparison, args.format)
    tolerance = compare.DEFAULT_ACCURACY_TOLERANCE if args.accuracy_tolerance is None else args.accuracy_tolerance
    outcome = compare.check(comparison, tolerance, args.allow_undecided, args.allow_missing)
    print()
    for line in tables.check_lines(outcome, baseline.label, current.label, tolerance):
        print(line)
    return outcome.exit_status


def _against_sides(args: argparse.Namespace):
    from bench.ab import Side

    return Side("A", f"revision {args.against}", root=args.against), Side("B", "this working tree")


def cmd_ab(args: argparse.Namespace) -> int:
    from bench.ab import parse_side

    return _interleaved(args, parse_side("A", args.a, options.spec_changes),
                        parse_side("B", args.b, options.spec_changes))


def _interleaved(args: argparse.Namespace, a, b) -> int:
    """Runs the selection as interleaved pairs of sides A and B, judges, prints, saves."""
    import contextlib

    from bench import ab, tables
    from bench.session import Session
    from bench.suite import Suite

    if args.target:
        raise UserError("Interleaved pairs compare step times; time to target is compared between stored runs: "
                        "`python -m bench run --target ...` on each side, then `python -m bench check --baseline N`.")
    session = Session.from_options({**options.from_namespace(args), "guard_seeds": 0, "repeats": 1})
    session.check_writable()
    suite = Suite()
    with (ab.worktree(a.root) if a.root else contextlib.nullcontext()) as tree:
        a = ab.Side(a.name, a.label, a.changes, a.env, tree)
        engine = ab.Interleaved(a, b, lambda spec, side: suite.run(spec, side.env, side.root),
                                _threshold(args, ab.DEFAULT_THRESHOLD), args.min_pairs, args.max_pairs, args.budget,
                                _pair_progress)
        paired = engine.run(session.plan, suite.skip_reason)
    outcome = ab.outcome(paired, args.allow_undecided, args.allow_missing)
    print()
    print(tables.render_rows(tables.PAIRED_HEADERS, tables.paired_rows(paired), args.format))
    if args.format != "json":
        print()
        for line in tables.paired_lines(a, b, outcome):
            print(line)
    if session.saving:
        from bench.storage import save_run

        settings = {"threshold": engine.threshold, "min_pairs": engine.min_pairs, "max_pairs": engine.max_pairs,
                    "budget_s": engine.budget_s, "against": args.against if hasattr(args, "against") else None}
        path = save_run(ab.records_by_side(paired), session.values["results"],
                        extra={"interleaved": ab.stored_document_part(a, b, paired, settings)})
        print(f"\nSaved {path}")
    return outcome.exit_status


def cmd_plan(args: argparse.Namespace) -> int:
    """Pairs needed per cell to catch ``--detect`` beyond the threshold, from stored pair noise."""
    from bench import ab, tables
    from bench.storage import Storage, load

    effect = _fraction(args.detect, "--detect")
    threshold = _threshold(args, ab.DEFAULT_THRESHOLD)
    if not 0 < args.power < 1:
        raise UserError(f"--power must be between 0 and 1; received {args.power}.")
    storage = Storage(args.results)
    machine = _this_machine_id()
    noise = ab.pair_noise([load(p) for p in storage.runs(machine)])
    wanted = [c for c in noise if _selected(c, args)]
    print(f"Pair noise from the interleaved runs stored for {machine} in {args.results}/:")
    print(tables.render_rows(tables.PLAN_HEADERS, tables.plan_rows(noise, wanted, effect, threshold, args.power)))
    if not wanted:
        print("No stored interleaved runs for this selection: run `python -m bench ab --b \"\" ...` "
              "(an A/A comparison) once to measure the noise.")
    return 0


def _fraction(text: str, what: str) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UserError(f"Bad {what} {text!r}: give a percentage (10%) or a fraction (0.10).") from None
    if value <= 0:
        raise UserError(f"{what} must be positive; received {text!r}.")
    return value


def _selected(cell: str, args: argparse.Namespace) -> bool:
    from bench.config import CellSpec

    parts = cell.split("-")
    spec = CellSpec(parts[0], parts[1], parts[2] if len(parts) > 2 else None)
    return all(not chosen or value in chosen for chosen, value in
               ((args.workload, spec.workload), (args.strategy, spec.strategy), (args.loop, spec.loop)))


def _pair_progress(cell, record_a, record_b) -> None:
    from bench.tables import pair_line

    print(pair_line(cell, record_a, record_b), flush=True)


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report import write_report
    from bench.storage import Storage, load

    storage = Storage(args.results)
    run = _load_ref(storage, args.run)
    history = [load(p) for p in storage.runs(run.machine_id)]
    out = args.out or os.path.join("reports", run.machine_id)
    from bench.compare import DEFAULT_THRESHOLD

    path = write_report(run, history, out, _threshold(args, DEFAULT_THRESHOLD))
    print(f"Wrote {path} (charts beside it)")
    return 0


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter (CUDA probing, CPU flags) drowns the table; the
    # parent needs none of it (workers keep warnings and errors for their error reports).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="distbench: %(message)s")
    try:
        _with_matrix_file(args)
        return args.func(args)
    except UserError as exc:
        print(f"distbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("distbench: interrupted", file=sys.stderr)
        return 130
