"""The command line: ``python -m bench`` (installed as ``distbench``).

User errors (``UserError``) are caught here, in one place, and become one line on
stderr and exit status 2; no traceback for a typo.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from bench.config import PROFILES, CellSpec
from bench.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="workloads, strategies (available here or why not), loops")
    p_list.set_defaults(func=cmd_list)
    p_run = sub.add_parser("run", help="run a selection of cells, each in its own process")
    add_selection_args(p_run)
    p_run.add_argument("--json", metavar="PATH", help="also write the records as JSON to PATH")
    p_run.set_defaults(func=cmd_run)
    return parser


def add_selection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workload", action="append", help="repeatable; default: all")
    p.add_argument("--strategy", action="append", help="repeatable; default: all")
    p.add_argument("--loop", action="append", help="repeatable; default: all")
    p.add_argument("--profile", default="quick", help=f"{' or '.join(PROFILES)} (default quick)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--steps-per-epoch", type=int, help="default: quick 100, full the whole training set")
    p.add_argument("--warmup-steps", type=int)
    p.add_argument("--global-batch", type=int)
    p.add_argument("--steps-per-execution", type=int, help="for fit (forced to 1 under multi-replica mirrored)")
    p.add_argument("--devices", type=int, help="logical devices for the virtual strategy (default 2)")
    p.add_argument("--data", help="auto (default), keras, synthetic, or a folder of class sub-folders")
    p.add_argument("--seed", type=int)
    p.add_argument("--eval-examples", type=int, help="test examples to evaluate (default: quick 5000)")
    p.add_argument("--matmul-shape", help="quick, seed (the notes' 10000x100 @ 100x100000) or M,K,N")
    p.add_argument("--matmul-repeats", type=int)
    p.add_argument("--deadline", type=float, dest="deadline_s", help="seconds per cell before SIGKILL")


def base_spec(args: argparse.Namespace) -> CellSpec:
    """The CellSpec template from the profile and any explicit overrides."""
    from workloads.matmul import parse_shape

    fields = {
        name: getattr(args, name)
        for name in ("epochs", "steps_per_epoch", "warmup_steps", "global_batch", "steps_per_execution",
                     "devices", "data", "seed", "eval_examples", "matmul_repeats", "deadline_s")
        if getattr(args, name) is not None
    }
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
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench import tables
    from bench.fileio import atomic_write_json
    from bench.suite import Suite, build_cells

    cells = build_cells(args.workload, args.strategy, args.loop, base_spec(args))
    suite = Suite()

    def progress(k, n, spec, record, elapsed):
        print(f"[{k}/{n}] {spec.id}: {_outcome(record)} ({elapsed:.0f} s elapsed)", flush=True)

    records = suite.run_all(cells, progress)
    print()
    print(tables.render(records))
    if args.json:
        atomic_write_json(args.json, records)
    return 1 if any(r["status"] == "error" for r in records) else 0


def _outcome(record) -> str:
    if record["status"] == "ok":
        return f"ok, median {record['step_time']['median'] * 1e3:.2f} ms/step"
    return f"{record['status']}: {record.get('reason', '')}"


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter (CUDA probing, CPU flags) drowns the table.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="distbench: %(message)s")
    try:
        return args.func(args)
    except UserError as exc:
        print(f"distbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("distbench: interrupted", file=sys.stderr)
        return 130
