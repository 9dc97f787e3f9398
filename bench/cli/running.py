"""``list``, ``run`` and ``tune``: the commands that run cells."""

from __future__ import annotations

import argparse
import sys

import distbench.loops as loops
from distbench import strategies, workloads
from distbench.analysis import guard
from distbench.cli.interleaved import pair_progress
from distbench.core.errors import UserError
from distbench.render import tables, tune_table
from distbench.render.run_table import outcome
from distbench.session import interleave as ab
from distbench.session import options, tune
from distbench.session.plan import selected
from distbench.session.session import Session
from distbench.storage.files import Storage
from distbench.strategies import hardware


def cmd_list(args: argparse.Namespace) -> int:
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
    if args.target:
        raise UserError("tune ranks configurations by step time; for time to target run "
                        "`distbench run --target ...` with each configuration.")
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
    print(tables.render_rows(tune_table.TUNE_HEADERS, tune_table.tune_rows(ranked), args.format))
    if args.format != "json":
        print("\n" + tune_table.tune_verdict(ranked, confirmed))
        for line in left_out + [f"{c}: {r.status}: {r.reason}" for c, r in session.results.items() if not r.measured]:
            print(f"  not ranked: {line}")
    return status


def _confirm(session, sides, pairs: int):
    """The interleaved test of tune's winner against plain fit (None when not run)."""
    if sides is None or pairs < 2:
        return None
    plain, a, b = sides
    suite = session._suite()
    engine = ab.Interleaved(a, b, lambda spec, side: suite.run(spec, side.env, side.root),
                            min_pairs=min(ab.DEFAULT_MIN_PAIRS, pairs), max_pairs=pairs, progress=pair_progress)
    print(f"\nConfirming the winner: {b.label} against {a.label}, interleaved ...", flush=True)
    return engine.run([plain], suite.skip_reason)[0]


class _Progress:
    """Progress lines while a session runs (the CLI prints; the session only reports)."""

    def __call__(self, k, n, spec, record, elapsed) -> None:
        print(f"[{k}/{n}] {spec.process_id}: {outcome(record)} ({elapsed:.0f} s elapsed)", flush=True)

    def overhead(self, spec) -> None:
        print(f"[overhead] {spec.id}: the harness's cell against a bare TensorFlow loop, process pairs ...", flush=True)

    def pair(self, cell, record_a, record_b) -> None:
        pair_progress(cell, record_a, record_b)
