"""The command line: ``distbench`` (also ``python -m distbench``).

User errors (``UserError``) are caught here, in one place, and become one line on
stderr and exit status 2; no traceback for a typo. ``check`` exits 1 on a regression.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys

import distbench
from distbench.cli.args import (
    RUN_ONLY,
    TUNE_REFUSES,
    add_format_arg,
    add_accuracy_tolerance_arg,
    add_interleaved_args,
    add_results_arg,
    add_running_args,
    add_verdict_args,
    document_only,
    once_each,
    readers_may_leave,
    stops_once,
)
from distbench.cli.interleaved import cmd_ab, cmd_bisect, cmd_check, cmd_plan
from distbench.cli.running import cmd_list, cmd_run, cmd_serve, cmd_tune
from distbench.cli.stored import cmd_compare, cmd_report
from distbench.core.errors import UserError
from distbench.render import run_table
from distbench.session import matrix_file, options
from distbench.session.bisect import FIND
from distbench.session.paired_run import TARGET_ONLY

DESCRIPTION = "Benchmark TensorFlow distributed training: workloads x strategies x training loops."


class _OneLineParser(argparse.ArgumentParser):
    """argparse's errors on one line (not its whole usage block first), exit status 2; a
    value such as ``-1,10,10`` is a value (to be refused by what reads it), not an option."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = options.NEGATIVE_VALUE

    def error(self, message: str, helps: str | None = None):
        side = re.fullmatch(r"argument (--[ab]): expected one argument", message)
        if side:   # a side that is one option (--b "--no-save") reads to argparse as that option, not a value
            message += (f": a side of one word that starts with a dash reads as an option; give it with '=', "
                        f"{side.group(1)}=--intra-op-threads=2")
        self.exit(2, f"{self.prog}: error: {message} (`{helps or self.prog + ' --help'}` lists every option)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="distbench", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"distbench {distbench.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_running_commands(sub)
    _add_stored_commands(sub)
    _add_interleaved_commands(sub)
    for command in sub.choices.values():
        once_each(command)
    return parser


def _add_running_commands(sub) -> None:
    """list, run, tune: what runs cells."""
    p = sub.add_parser("list", help="workloads, strategies (available here or why not), loops, stored runs")
    add_results_arg(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run a selection of cells, each in its own process, and save it")
    add_running_args(p)
    options.add_to_argparse(p, RUN_ONLY)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("tune", help="rank loops, steps per execution and XLA for one workload by speed")
    add_running_args(p, TUNE_REFUSES)
    next(a for a in p._actions if a.dest == "strategy").help = (   # run's says "default: all"
        "a strategy to rank (repeatable; default: the matrix file's, else default)")
    p.add_argument("--confirm-pairs", type=int, default=6, metavar="N",
                   help="interleaved pairs (at most) to test the winner against plain fit (default 6; 0: skip)")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("serve", help="serve this machine's task of a parameter-server cluster (TF_CONFIG's worker "
                                     "or ps) until killed; the chief runs `distbench run --strategy parameter_server`")
    p.add_argument("--ps", type=int, default=1, help="in a SLURM job step: its parameter servers (default 1)")
    p.set_defaults(func=cmd_serve)


def _add_stored_commands(sub) -> None:
    """compare, report: what reads stored runs (check is with the interleaved commands)."""
    p = sub.add_parser("compare", help="compare two stored runs cell by cell")
    p.add_argument("a", help="run A: a file path, a run number, latest or latest~N (another machine's: MACHINE/N, "
                             "MACHINE/latest)")
    p.add_argument("b", help="run B (the newer one, usually)")
    add_verdict_args(p)
    add_results_arg(p)
    add_format_arg(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="write report.html (one self-contained page) and report.md with PNG charts")
    p.add_argument("--run", default="latest", help="the run to report (default: latest)")
    p.add_argument("--out", default=None, help="output folder (default: reports/<machine-id> beside the results folder)")
    p.add_argument("--reference", default=None, metavar="MACHINE",
                   help="the machine others are compared with (a folder of the results; default: the run's)")
    add_verdict_args(p)
    add_results_arg(p)
    p.set_defaults(func=cmd_report)


def _add_interleaved_commands(sub) -> None:
    """check, ab, bisect, plan."""
    p = sub.add_parser("check", help="exit 1 on a regression: against a stored baseline, or measured now "
                                     "against a git revision (exit 3: undecided, crashed or missing cells)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--baseline", help="a stored baseline run (path, number, latest~N)")
    which.add_argument("--against", metavar="REV", help="measure this project's working tree against its git revision REV now, "
                       "interleaved process by process")
    p.add_argument("--run", default=None, help="with --baseline: the run to check (default: the latest that is not "
                   "an interleaved run of check --against or ab)")
    p.add_argument("--cell-threshold", action="append", default=[], metavar="CELL=X",
                   help="per-cell slow-down threshold, e.g. reuters_cnn-virtual-fit=0.4 (repeatable)")
    add_accuracy_tolerance_arg(p)
    p.add_argument("--allow-other-machine", action="store_true",
                   help="with --baseline: check runs from machines whose fingerprints differ (else exit 3)")
    add_interleaved_args(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("ab", help="compare two configurations of this tree now, interleaved process by process")
    p.add_argument("--a", default="", help='side A: run options and NAME=VALUE environment, e.g. "--intra-op-threads 1"')
    p.add_argument("--b", required=True, help='side B, e.g. "--intra-op-threads 2" or "TF_ENABLE_ONEDNN_OPTS=0"')
    add_accuracy_tolerance_arg(p)
    add_interleaved_args(p)
    p.set_defaults(func=cmd_ab)

    p = sub.add_parser("bisect", help="find the first commit after GOOD, up to BAD, whose cells are slower or less "
                                      "accurate than GOOD's: interleaved pairs at each step (exit 3: a step undecided)")
    p.add_argument("good", metavar="GOOD", help="a commit, branch or tag whose speed and accuracy are the reference")
    p.add_argument("bad", metavar="BAD", help="a later commit that regressed (default HEAD)", nargs="?", default="HEAD")
    p.add_argument("--find", choices=list(FIND), default="regression",
                   help="what a regression is: slower or less accurate, as check --against fails (regression, the "
                        "default), slower only, or less accurate only (then each step runs --min-pairs pairs)")
    add_accuracy_tolerance_arg(p)
    add_interleaved_args(p)
    p.set_defaults(func=cmd_bisect)

    p = sub.add_parser("plan", help="how many interleaved pairs it takes to detect a slow-down here")
    p.add_argument("--detect", required=True, metavar="EFFECT", help="the slow-down to catch: 10%% or 0.10")
    p.add_argument("--threshold", default=None,
                   help="the band's edge the interval must clear, a fraction or a percentage (default: the "
                        "interleaved default, 0.05)")
    p.add_argument("--power", type=float, default=0.8, help="chance of catching it (default 0.8)")
    p.add_argument("--no-lockstep", action="store_true",
                   help="plan for pairs run one after the other (ab --no-lockstep), from those pairs' noise")
    options.add_to_argparse(p, ("workload", "strategy", "loop", "results"))
    p.set_defaults(func=cmd_plan)


def _with_matrix_file(args: argparse.Namespace) -> None:
    """Fills the options the command line left unset from the project's matrix file
    (``[tool.distbench]``, :mod:`distbench.session.matrix_file`), found from the working directory up;
    ``results`` defaults to ``results/`` beside that file (as under pytest: one history for the
    project, wherever a command is typed), else in the working directory."""
    path = matrix_file.find()
    declared = matrix_file.read(path) if path else {}
    args.matrix_file = str(path) if path else None
    args.declared = {k: list(v) for k, v in declared.items() if isinstance(v, list)}   # its names, as read
    # What the command line itself gave: check --against reads the other version's matrix file under it.
    args.given = {o.name: getattr(args, o.name) for o in options.OPTIONS
                  if getattr(args, o.name, None) not in (None, [], False)}
    # The file's threshold is for stored runs (compare, check --baseline, report): an
    # interleaved verdict keeps its own, narrower default unless --threshold is given.
    args.stored_threshold = declared.pop("threshold", None)
    # The file's target is run's (time to target between stored runs): the commands that
    # compare step times refuse a target, and the file's had blocked them with nothing to undo it.
    if args.command in ("ab", "bisect", "tune") or getattr(args, "against", None):
        for name in TARGET_ONLY:   # with what bounds a target run
            declared.pop(name, None)
    merged = matrix_file.merge(declared, {name: getattr(args, name, None) for name in {*declared, "plugin"}})
    for name, value in merged.items():
        if hasattr(args, name):
            setattr(args, name, value)
    options.refuse_empty(options.BY_NAME["results"], getattr(args, "results", None))   # list, compare: "" read as "."
    if getattr(args, "results", "") is None:
        args.results = str(path.parent / "results") if path else options.BY_NAME["results"].default


def _where(exc: UserError, args: argparse.Namespace) -> str:
    """``exc``'s line, naming the matrix file when what it refuses came from there."""
    return matrix_file.where(exc, getattr(args, "matrix_file", None), getattr(args, "declared", {}),
                             getattr(args, "given", {}))


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter (CUDA probing, CPU flags) drowns the table; the
    # parent needs none of it (workers keep warnings and errors for their error reports).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:   # named by the command's own help, which lists what it takes
        parser.error(f"unrecognized arguments for `{parser.prog} {args.command}`: {' '.join(extra)}",
                     f"{parser.prog} {args.command} --help")
    logging.basicConfig(level=logging.WARNING, format="distbench: %(message)s")
    with readers_may_leave(), stops_once() as stops:
        code = _run_command(args)
    return 143 if code == 130 and stops.terminated else code   # as the shell reports a SIGTERM


def _run_command(args: argparse.Namespace) -> int:
    try:
        _with_matrix_file(args)
        with document_only(getattr(args, "format", None)):
            return args.func(args)
    except UserError as exc:
        print(run_table.error_line(_where(exc, args)), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(run_table.INTERRUPTED_UNSAVED, file=sys.stderr)
        return 130
