"""``list``, ``run`` and ``tune``: the commands that run cells."""

from __future__ import annotations

import argparse
import os
import sys

import distbench.loops as loops
from distbench import plugins, strategies, workloads
from distbench.analysis import tuning
from distbench.cli.args import emit
from distbench.cli.interleaved import pair_progress
from distbench.cli.stored import this_machine_id
from distbench.core.errors import UserError
from distbench.render import listing, run_table, summary, tune_table, verdicts
from distbench.session import matrix_file, options, tune
from distbench.session.plan import selected
from distbench.session.session import Session
from distbench.storage.files import Storage, load
from distbench.launchers import process as launcher
from distbench.strategies import slurm
from distbench.strategies.base import Availability
from distbench.strategies.multi_worker import tf_config
from distbench.strategies.parameter_server import cluster_roles


def cmd_list(args: argparse.Namespace) -> int:
    _load_project_classes(args.matrix_file)
    hw = launcher.machine()
    adapters = [(name, strategies.get(name)) for name in strategies.STRATEGIES.names()]
    runs = Storage(args.results).runs()
    for line in listing.listing_lines(
            hw.summary(), [(name, workloads.get(name).summary) for name in workloads.WORKLOADS.names()],
            [(name, _availability(adapter, hw), adapter.summary) for name, adapter in adapters],
            [(name, loops.get(name).summary) for name in loops.LOOPS.names()], args.results,
            runs, this_machine_id(), *_run_states(runs)):
        print(line)
    return 0


def _run_states(runs: list) -> tuple[dict[str, tuple[str, str]], dict[str, list[str]]]:
    """Each machine folder's latest run that is not a whole one, as ("unreadable", why: a
    truncated file, which compare, check and report refuse) or ("interrupted", ""); and the
    names of its earlier runs that cannot be read (the history compare and check read
    skips them)."""
    latest = {path.parent.name: path for path in runs}   # runs are in order: the last of each folder wins
    states, unreadable = {}, {}
    for path in runs:
        machine = path.parent.name
        try:
            if load(path).interrupted and path == latest[machine]:
                states[machine] = ("interrupted", "")
        except UserError as exc:
            if path == latest[machine]:
                states[machine] = ("unreadable", str(exc).removeprefix(f"{path} "))
            else:
                unreadable.setdefault(machine, []).append(path.name)
    return states, unreadable


def _availability(adapter, hw) -> Availability:
    """What ``list`` says of an adapter: a setting it refuses (TF_CONFIG that is not JSON)
    reads as unavailable, with the reason, rather than stopping the listing."""
    try:
        return adapter.availability(hw)
    except UserError as exc:
        return Availability.no(str(exc))


def _load_project_classes(path: str | None) -> None:
    """The workloads, strategies and loops the project's matrix file names by reference
    (and its ``plugins``), registered so that ``list`` shows them beside the built-ins."""
    if path:
        plugins.load_selection(matrix_file.read(path))


def cmd_run(args: argparse.Namespace) -> int:
    session = Session.from_options(options.from_namespace(args), matrix=args.matrix_file)
    session.check_writable()
    session.run_all(_Progress())
    return _finish(session, args.format)


def _finish(session, fmt: str | None) -> int:
    """Judges, prints (as ``fmt``; None: no table) and saves a session's run; the exit status.
    A save that fails (a full disk) does not take the table with it: it is printed first."""
    try:
        session.finish()
        unsaved = None
    except UserError as exc:
        unsaved = exc
    print()
    if fmt:
        emit(session.summary(fmt))
    if unsaved is not None:
        print(run_table.error_line(unsaved), file=sys.stderr)
        return 2
    if session.saved:
        print("\n" + summary.saved_line(session.saved))
    elif not session.values["no_save"] and session.ran:   # Ctrl-C before any: nothing to save
        print("\n" + run_table.NOT_SAVED)
    if session.interrupted:   # with --no-save (or nothing finished) nothing was: it had said "saved"
        print(run_table.INTERRUPTED if session.saved else run_table.INTERRUPTED_UNSAVED, file=sys.stderr)
        return 130
    return session.exit_status


def cmd_tune(args: argparse.Namespace) -> int:
    if args.confirm_pairs is not None and (args.confirm_pairs < 0 or args.confirm_pairs == 1):
        raise UserError(f"--confirm-pairs must be 0 (no confirmation) or at least 2 (a verdict needs two pairs); "
                        f"received {args.confirm_pairs}.")
    _refuse_run_only(args)
    session = Session.from_options(options.from_namespace(args), repeats_default=3, matrix=args.matrix_file)
    chosen_workloads = session.values["workload"]   # references (file.py:Class, module:Class) loaded: names
    if len(chosen_workloads) != 1 or workloads.get(chosen_workloads[0]).kind != "training":
        trainable = [w for w in workloads.WORKLOADS.names() if workloads.get(w).kind == "training"]
        raise UserError(f"tune needs exactly one training workload: --workload {' or '.join(trainable)} "
                        f"(or your own, as file.py:Class or module:Class); received {', '.join(chosen_workloads) or 'none'}.")
    if session.base.init_seed is not None:
        raise UserError("tune trains every candidate from the cell's own seed, and the accuracy guard's from "
                        f"its seeds (--guard-seeds); --init-seed {session.base.init_seed} is for run.")
    flavours = session.values["keras"] or ["keras3"]
    if len(set(flavours)) > 1:
        raise UserError(f"tune ranks one Keras flavour at a time; received --keras {', '.join(flavours)}: "
                        "run tune once with each.")
    chosen = selected(args.strategy or ["default"], strategies.STRATEGIES)
    from_file = (args.matrix_file, loops.LOOPS.names()) if args.loop and "loop" not in args.given else None
    candidates, left_out = tune.plan(session, chosen_workloads[0], chosen, selected(args.loop, loops.LOOPS),
                                     flavours[0], from_file)
    session.check_writable()
    session.run_all(_Progress())
    status = _finish(session, None)
    ranked = tuning.rank(session.results, {c.id for c in candidates})
    if session.interrupted:   # a winner of the candidates that ran, "CONFIRMED" by pairs run after Ctrl-C: none
        return _tune_verdict(args.format, ranked, tune_table.interrupted_line(ranked, candidates), [], status,
                             interrupted=True)
    sides = tune.confirmation(ranked)
    if sides is not None and args.confirm_pairs >= 2:
        print(tune_table.confirming_line(sides), flush=True)
    label = tune_table.pair_label(sides) if sides else None
    confirmed = tune.confirm(
        session, sides, args.confirm_pairs,
        lambda cell, a, b: print(summary.wrap(verdicts.pair_line(cell, a, b, label)), flush=True))
    if confirmed.saved:
        print(summary.saved_line(confirmed.saved) + " (the confirmation's pairs)")
    return _tune_verdict(args.format, ranked, tune_table.tune_verdict(ranked, confirmed.cell),
                         tune_table.not_ranked_lines(left_out, session.results), 2 if confirmed.unsaved else status,
                         confirmed)


def _tune_verdict(fmt: str, ranked, verdict: str, not_ranked: list[str], status: int, confirmed=None,
                  interrupted: bool = False) -> int:
    """tune's ranking (as ``fmt``; json: one document with the verdict) and its verdict lines;
    ``confirmed``: the confirmation (None: none ran, as after Ctrl-C)."""
    cell = confirmed.cell if confirmed else None
    if fmt == "json":
        emit(tune_table.tune_document(ranked, verdict, not_ranked, cell, status, interrupted))
    else:
        emit(tune_table.tune_text(ranked, fmt))
    for line in summary.wrap_lines(["", verdict, *not_ranked]):
        print(line)
    if confirmed and confirmed.unsaved:   # after the verdict, which a failed save does not take with it
        print(run_table.error_line(confirmed.unsaved), file=sys.stderr)
    return status


def _refuse_run_only(args: argparse.Namespace) -> None:
    """Options of run that tune sets itself, or has no use for."""
    if args.target:
        raise UserError("tune ranks configurations by step time; for time to target run "
                        "`distbench run --target ...` with each configuration.")
    if args.steps_per_execution is not None:   # typed: it was dropped without a word
        raise UserError(f"tune tries fit's steps per execution itself (1, 10 and 50, its candidates); "
                        f"--steps-per-execution {args.steps_per_execution} is for run and ab.")
    if args.jit_compile:   # it ranked XLA off and on all the same
        raise UserError("tune tries XLA off and on itself (each candidate both ways); --jit-compile is for run and ab.")


class _Progress:
    """Progress lines while a session runs (the CLI prints; the session only reports)."""

    def __call__(self, k, n, spec, record, elapsed) -> None:
        print(summary.wrap(run_table.progress_line(k, n, spec, record, elapsed)), flush=True)

    def overhead(self, spec) -> None:
        print(run_table.overhead_progress_line(spec), flush=True)

    def pair(self, cell, record_a, record_b) -> None:
        pair_progress(cell, record_a, record_b)


def cmd_serve(args: argparse.Namespace) -> int:
    """Checks ``TF_CONFIG`` here (one line when it is wrong), then becomes the server: the
    process is replaced by a worker serving its task (distbench.scenarios.server)."""
    if args.ps < 1:
        raise UserError(f"--ps must be >= 1 (a SLURM job step's parameter servers); received {args.ps}.")
    slurm.apply(["parameter_server"], args.ps)
    config = tf_config()
    if config is None:
        raise UserError("TF_CONFIG is not set: serve needs the cluster and this machine's task "
                        '({"cluster": {"chief": [...], "worker": [...], "ps": [...]}, "task": {"type": "ps", "index": 0}}).')
    try:
        cluster_roles(config)
    except ValueError as exc:
        raise UserError(f"TF_CONFIG is not a parameter-server cluster's: {exc}.") from None
    if config["task"]["type"] == "chief":
        where = ("this SLURM task is rank 0 of its job step, the chief" if slurm.source() == "slurm" else
                 "TF_CONFIG's task is the chief")   # under SLURM the user set no TF_CONFIG
        raise UserError(f"{where}: run `distbench run --strategy parameter_server` there; serve runs on the worker "
                        "and ps tasks.")
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "distbench.worker", "serve"])
    return 0   # not reached
