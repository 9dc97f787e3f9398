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

from bench.config import PROFILES, CellSpec
from bench.errors import UserError

DESCRIPTION = "Benchmark TensorFlow distributed training: workloads x strategies x training loops."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distbench", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="workloads, strategies (available here or why not), loops, stored runs")
    _add_results_arg(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run a selection of cells, each in its own process, and save it")
    _add_running_args(p, repeats=1)
    p.add_argument("--overhead", action="store_true",
                   help="also measure the harness's overhead against a bare TensorFlow loop "
                        "(default strategy, custom loop, each selected training workload)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("tune", help="rank loops, steps per execution and XLA for one workload by speed")
    _add_running_args(p, repeats=3)
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("compare", help="compare two stored runs cell by cell")
    p.add_argument("a", help="run A: a file path, a run number, latest or latest~N")
    p.add_argument("b", help="run B (the newer one, usually)")
    _add_verdict_args(p)
    _add_results_arg(p)
    _add_format_arg(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("check", help="exit 1 if the latest run regressed against a baseline")
    p.add_argument("--baseline", required=True, help="the baseline run (path, number, latest~N)")
    p.add_argument("--run", default="latest", help="the run to check (default: latest)")
    _add_verdict_args(p)
    p.add_argument("--cell-threshold", action="append", default=[], metavar="CELL=X",
                   help="per-cell slow-down threshold, e.g. reuters_cnn-virtual-fit=0.4 (repeatable)")
    p.add_argument("--accuracy-tolerance", type=float, default=None,
                   help="largest acceptable loss of test accuracy (default 0.05)")
    p.add_argument("--fail-on-noisy", action="store_true",
                   help="also fail (exit 1) when a cell is too noisy to rule out a regression")
    _add_results_arg(p)
    _add_format_arg(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("report", help="write a Markdown report with PNG charts")
    p.add_argument("--run", default="latest", help="the run to report (default: latest)")
    p.add_argument("--out", default=None, help="output folder (default: reports/<machine-id>)")
    _add_verdict_args(p)
    _add_results_arg(p)
    p.set_defaults(func=cmd_report)
    return parser


def _add_running_args(p: argparse.ArgumentParser, repeats: int) -> None:
    """What run and tune share: the selection, repeats, saving, the guard, results and format."""
    add_selection_args(p)
    p.add_argument("--repeats", type=int, default=repeats,
                   help=f"run each cell N times, each in a fresh process (default {repeats})")
    p.add_argument("--no-save", action="store_true", help="do not save the run under results/")
    _add_guard_arg(p)
    _add_results_arg(p)
    _add_format_arg(p)


def _add_guard_arg(p: argparse.ArgumentParser) -> None:
    from bench.guard import DEFAULT_SEEDS

    p.add_argument("--guard-seeds", type=int, default=DEFAULT_SEEDS,
                   help=f"training seeds of the reference cell (default fit) for the accuracy guard "
                        f"(default {DEFAULT_SEEDS}; 0 or 1: no guard)")


def _add_results_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default="results", help="the results folder (default: results)")


def _add_format_arg(p: argparse.ArgumentParser) -> None:
    from bench.tables import FORMATS

    p.add_argument("--format", default="table", choices=FORMATS, help="output format (default: table)")


def _add_verdict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold", type=float, default=None,
                   help="relative change of the median that counts (default 0.25, from measured noise)")
    p.add_argument("--alpha", type=float, default=None, help="significance level (default 0.01)")


def add_selection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workload", action="append", help="repeatable; default: all")
    p.add_argument("--strategy", action="append", help="repeatable; default: all")
    p.add_argument("--loop", action="append", help="repeatable; default: all")
    p.add_argument("--profile", default="quick", help=f"{' or '.join(PROFILES)} (default quick)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--steps-per-epoch", type=int, help="default: quick 100, full the whole training set")
    p.add_argument("--warmup-steps", type=int)
    p.add_argument("--global-batch", type=int, help="global batch (default 32); with --scaling weak, per replica")
    p.add_argument("--scaling", choices=("strong", "weak"),
                   help="strong: global batch fixed (default); weak: per-replica batch fixed")
    p.add_argument("--steps-per-execution", type=int, help="for fit (forced to 1 under multi-replica mirrored)")
    p.add_argument("--devices", type=int, help="logical devices for the virtual strategy (default 2)")
    p.add_argument("--workers", type=int, help="local worker processes for multi_worker without TF_CONFIG (default 2)")
    p.add_argument("--data", help="auto (default), keras, synthetic, or a folder of class sub-folders")
    p.add_argument("--seed", type=int, help="data seed, and by default the training seed (default 0)")
    p.add_argument("--init-seed", type=int,
                   help="training seed only (weights, shuffle order), the data unchanged; names cells ...-initN")
    p.add_argument("--eval-examples", type=int, help="test examples to evaluate (default: quick 5000)")
    p.add_argument("--matmul-shape", help="quick, seed (the notes' 10000x100 @ 100x100000) or M,K,N")
    p.add_argument("--matmul-repeats", type=int)
    p.add_argument("--intra-op-threads", type=int, help="TensorFlow intra-op threads per worker (0: default)")
    p.add_argument("--inter-op-threads", type=int, help="TensorFlow inter-op threads per worker (0: default)")
    p.add_argument("--deadline", type=float, dest="deadline_s", help="seconds per cell before SIGKILL")


SPEC_FIELDS = (
    "epochs", "steps_per_epoch", "warmup_steps", "global_batch", "scaling", "steps_per_execution", "devices", "workers",
    "data",
    "seed", "init_seed", "eval_examples", "matmul_repeats", "intra_op_threads", "inter_op_threads", "deadline_s",
)


def base_spec(args: argparse.Namespace) -> CellSpec:
    """The CellSpec template from the profile and any explicit overrides."""
    from workloads.matmul import parse_shape

    fields = {name: getattr(args, name) for name in SPEC_FIELDS if getattr(args, name) is not None}
    if args.matmul_shape:
        fields["matmul_shape"] = parse_shape(args.matmul_shape)
    if "data" in fields:
        from workloads.data import check_source

        check_source(fields["data"])
    return CellSpec.for_profile(args.profile, workload="", strategy="", loop=None, **fields)


def cmd_list(args: argparse.Namespace) -> int:
    import bench.loops as loops
    import strategies
    import workloads
    from bench.storage import Storage
    from strategies import hardware

    hw = hardware.detect()
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
    from bench import guard, tables
    from bench.storage import save_run
    from bench.suite import Suite, build_cells, overhead_cells
    from strategies.multi_worker import is_chief, tf_config

    cells = guard.with_replicates(build_cells(args.workload, args.strategy, args.loop, base_spec(args)),
                                  _guard_seeds(args.guard_seeds))
    suite = Suite()
    results = _run_judged(suite, cells, args)
    overhead = [_overhead(suite, spec) for spec in overhead_cells(cells)] if args.overhead else []
    print()
    print(tables.run_summary(results, args.format, overhead))
    if not args.no_save and is_chief(tf_config()):
        path = save_run(results, args.results, overhead)
        print(f"\nSaved {path}")
    elif not args.no_save:
        print("\nNot saved: this process is a non-chief worker of a TF_CONFIG cluster; the chief saves the run.")
    return 1 if any(r["status"] == "error" for reps in results.values() for r in reps) else 0


def cmd_tune(args: argparse.Namespace) -> int:
    import bench.loops as loops
    import strategies
    import workloads
    from bench import guard, tables, tune
    from bench.records import ok
    from bench.storage import save_run
    from bench.suite import Suite, selected

    if not args.workload or len(args.workload) != 1 or workloads.get(args.workload[0]).kind != "training":
        trainable = [w for w in workloads.WORKLOADS.names() if workloads.get(w).kind == "training"]
        raise UserError(f"tune needs exactly one training workload: --workload {' or '.join(trainable)}; "
                        f"received {args.workload or 'none'}.")
    chosen = selected(args.strategy or ["default"], strategies.STRATEGIES)
    suite = Suite()
    candidates, left_out = tune.candidates(args.workload[0], chosen, selected(args.loop, loops.LOOPS),
                                           base_spec(args), suite.hw)
    results = _run_judged(suite, candidates + guard.replicates(candidates, _guard_seeds(args.guard_seeds)), args)
    ranked = tune.rank(results, {c.id for c in candidates})
    print()
    print(tables.render_rows(tables.TUNE_HEADERS, tables.tune_rows(ranked), args.format))
    if args.format != "json":
        print("\n" + tables.tune_verdict(ranked))
        for line in left_out + [f"{c}: {_outcome(reps[0])}" for c, reps in results.items() if not ok(reps)]:
            print(f"  not ranked: {line}")
    if not args.no_save:
        print(f"\nSaved {save_run(results, args.results)}")
    return 0


def _run_judged(suite, cells: list[CellSpec], args: argparse.Namespace) -> dict:
    """Runs ``cells`` ``--repeats`` times with progress lines, after checking that the
    results can be saved, and judges them with the accuracy guard."""
    from bench import guard

    if not args.no_save:
        _check_writable(args.results)
    results = suite.run_all(cells, args.repeats, _progress)
    guard.apply(results)
    return results


def _overhead(suite, spec):
    print(f"[overhead] {spec.id}: harness against a bare TensorFlow loop, interleaved ...", flush=True)
    return suite.overhead(spec)


def _guard_seeds(seeds: int) -> int:
    if seeds < 0:
        raise UserError(f"--guard-seeds must be >= 0 (0 or 1 turns the accuracy guard off); received {seeds}.")
    return seeds


def _check_writable(folder: str) -> None:
    """Fails before hours of benchmarking, not after, when results cannot be saved."""
    import tempfile

    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UserError(
            f"Cannot write results under {folder!r}: {exc.strerror}. Pass --results DIR or --no-save."
        ) from None


def _progress(k, n, spec, record, elapsed) -> None:
    print(f"[{k}/{n}] {spec.id}: {_outcome(record)} ({elapsed:.0f} s elapsed)", flush=True)


def _outcome(record) -> str:
    from bench.records import short_reason

    if record["status"] == "ok":
        return f"ok, median {record['step_time']['median'] * 1e3:.2f} ms/step"
    return f"{record['status']}: {short_reason(record)}"


def _load_ref(storage, ref: str):
    from bench.storage import load

    return load(storage.resolve(ref, _this_machine_id))


@functools.lru_cache(maxsize=1)
def _this_machine_id() -> str:
    from bench.machine import machine_id, machine_info

    return machine_id(machine_info())


def _verdict_options(args: argparse.Namespace) -> dict:
    from bench import compare

    threshold = compare.DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    alpha = compare.DEFAULT_ALPHA if args.alpha is None else args.alpha
    if threshold < 0:
        raise UserError(f"Threshold must be >= 0 (a relative change, 0.25 = 25%); received {threshold}.")
    if not 0 < alpha < 1:
        raise UserError(f"Alpha must be between 0 and 1; received {alpha}.")
    return {"threshold": threshold, "alpha": alpha}


def _print_comparison(comparison, fmt: str) -> None:
    from bench import tables

    if fmt == "json":
        print(json.dumps({
            "a": comparison.a.label, "b": comparison.b.label,
            "machine_diff": [{"field": k, "a": a, "b": b} for k, a, b in comparison.machine_diff],
            "cells": [c.as_dict() for c in comparison.cells],
        }, indent=2))
        return
    if fmt == "table":
        for side, run in (("A", comparison.a), ("B", comparison.b)):
            commit = (run.data.get("commit_info", {}).get("id") or "?")[:8]
            print(f"{side}: {run.label} (commit {commit}, {run.data.get('datetime', '?')})")
        if comparison.machine_diff:
            print("Machines differ in: " + "; ".join(f"{k}: {a} -> {b}" for k, a, b in comparison.machine_diff))
        else:
            print("Same machine fingerprint.")
        print()
    print(tables.render_rows(tables.COMPARE_HEADERS, tables.comparison_rows(comparison.cells), fmt))
    if fmt == "table" and any(c.notes for c in comparison.compared):
        print("\nMedians are medians over processes (runs A/B). With one process per side the "
              "interval ignores run-to-run noise, which reached 2x here: use --repeats 3 or more.")


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare import compare_runs
    from bench.storage import Storage

    storage = Storage(args.results)
    a, b = _load_ref(storage, args.a), _load_ref(storage, args.b)
    _print_comparison(compare_runs(a, b, **_verdict_options(args)), args.format)
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
    from bench import compare
    from bench.storage import Storage

    storage = Storage(args.results)
    baseline, current = _load_ref(storage, args.baseline), _load_ref(storage, args.run)
    overrides = _cell_thresholds(args.cell_threshold)
    unknown = sorted(set(overrides) - set(baseline.cells()) - set(current.cells()))
    if unknown:
        raise UserError(f"--cell-threshold names cells in neither run: {', '.join(unknown)}.")
    comparison = compare.compare_runs(baseline, current, overrides=overrides, **_verdict_options(args))
    _print_comparison(comparison, args.format)
    tolerance = compare.DEFAULT_ACCURACY_TOLERANCE if args.accuracy_tolerance is None else args.accuracy_tolerance
    failures = compare.regressions(comparison, tolerance)
    noisy = compare.too_noisy(comparison)
    print()
    if noisy:
        print(f"NOT CHECKED, too noisy to rule out a slow-down beyond the threshold ({len(noisy)} cells; "
              "use more --repeats or a quieter machine):")
        for line in noisy:
            print(f"  {line}")
    if failures:
        print(f"FAIL: {current.label} regressed against {baseline.label}:")
        for line in failures:
            print(f"  {line}")
        return 1
    if noisy and args.fail_on_noisy:
        print(f"FAIL (--fail-on-noisy): {len(noisy)} cells could not be checked.")
        return 1
    checked = len(comparison.compared) - len(noisy)
    print(f"PASS: none of the {checked} checked cells of {current.label} is significantly slower (beyond its "
          f"threshold), lost more than {tolerance} test accuracy, or newly fails the accuracy guard, against "
          f"{baseline.label}.")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report import write_report
    from bench.storage import Storage, load

    storage = Storage(args.results)
    run = _load_ref(storage, args.run)
    history = [load(p) for p in storage.runs(run.machine_id)]
    out = args.out or os.path.join("reports", run.machine_id)
    path = write_report(run, history, out, **_verdict_options(args))
    print(f"Wrote {path} (charts beside it)")
    return 0


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter (CUDA probing, CPU flags) drowns the table; the
    # parent needs none of it (workers keep warnings and errors for their error reports).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="distbench: %(message)s")
    try:
        return args.func(args)
    except UserError as exc:
        print(f"distbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("distbench: interrupted; nothing was saved for this run", file=sys.stderr)
        return 130
