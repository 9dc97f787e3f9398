"""Argument groups the commands share: run options, the interleaved settings, results, format, threshold."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading

from distbench.core.config import fraction
from distbench.render.tables import FORMATS
from distbench.session import interleave, options

# What run alone takes (tune and the interleaved commands print no run table and measure no overhead).
RUN_ONLY = ("overhead", "full_table")
RUN_OPTIONS = tuple(o.name for o in options.OPTIONS if o.name not in RUN_ONLY)
# Parsed, refused in one line, and left out of the help: time to target is run's alone, and tune
# tries steps per execution and XLA itself ("tune --help" had listed them).
TARGET_ONLY = ("target", "eval_every", "max_steps")
TUNE_REFUSES = (*TARGET_ONLY, "steps_per_execution", "jit_compile", "init_seed")


def add_running_args(p: argparse.ArgumentParser, refused: tuple[str, ...] = ()) -> None:
    """What run and tune share: every run option of the one option table, and the format."""
    options.add_to_argparse(p, RUN_OPTIONS, refused)
    add_format_arg(p)


def add_interleaved_args(p: argparse.ArgumentParser) -> None:
    """The selection and run options, the verdict's threshold and the pairs' budget."""
    options.add_to_argparse(p, tuple(n for n in RUN_OPTIONS if n not in ("repeats", "guard_seeds")), TARGET_ONLY)
    p.add_argument("--threshold", default=None,
                   help=f"relative change that counts, a fraction or a percentage (default: "
                        f"{interleave.DEFAULT_THRESHOLD} interleaved, 0.25 against a stored baseline)")
    p.add_argument("--min-pairs", type=int, default=None,
                   help=f"pairs before a first verdict (default {interleave.DEFAULT_MIN_PAIRS})")
    p.add_argument("--max-pairs", type=int, default=None,
                   help=f"pairs at most per cell; then undecided (default {interleave.DEFAULT_MAX_PAIRS})")
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS", help="time for all pairs of all cells")
    p.add_argument("--no-lockstep", action="store_true",
                   help="run each pair's two processes one after the other (order alternating) instead of taking "
                        "turns step by step: for input-bound cells, whose pipelines fill while the partner steps")
    p.add_argument("--allow-undecided", action="store_true", help="do not fail on undecided cells (exit 0, listed)")
    p.add_argument("--allow-missing", action="store_true",
                   help="do not fail on cells one run lacks, the baseline (side A) crashed, or measured differently "
                        "(exit 0, listed); a crash of the checked side (B) always fails")
    add_format_arg(p)


def add_results_arg(p: argparse.ArgumentParser) -> None:
    options.add_to_argparse(p, ("results",))


def add_format_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", default="table", choices=FORMATS, help="output format (default: table)")


def add_verdict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold", default=None,
                   help="relative change of the median that counts, a fraction or a percentage (default 0.25 "
                        "between stored runs)")


def add_accuracy_tolerance_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accuracy-tolerance", default=None,
                   help="largest acceptable loss of the guard's test metric, B against A, in its units (default "
                        "0.05); for a lower-is-better metric such as MAE a share of A's value (0.05 or 5%%)")


def accuracy_tolerance_of(args: argparse.Namespace, default: float) -> float:
    # In the metric's own units for a higher-is-better one (a BLEU of 0 to 100 may lose 2):
    # any size; a share of A's value for a lower-is-better one.
    return default if args.accuracy_tolerance is None else fraction(args.accuracy_tolerance, "--accuracy-tolerance",
                                                                    zero_ok=True, any_size=True)


def threshold_of(args: argparse.Namespace, default: float) -> float:
    """--threshold, else ``default`` (the matrix file's is checked as the file is read)."""
    return default if args.threshold is None else fraction(args.threshold, "--threshold")


# The stream a command's document (its table, or with --format json its one JSON document)
# goes to; with --format json everything else (progress, verdict lines, "Saved ...") goes
# to stderr, so that stdout is exactly one JSON document.
_document = sys.stdout


def emit(text: str) -> None:
    """Writes the command's document."""
    print(text, file=_document, flush=True)


@contextlib.contextmanager
def document_only(fmt: str | None):
    """Within it, ``print`` goes to stderr when ``fmt`` is a document (json, csv, markdown: the
    progress lines had made a csv's first row); :func:`emit` to stdout."""
    global _document
    _document = sys.stdout
    if fmt in (None, "table"):
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


class ReaderGone:
    """A standard stream whose reader may leave (``distbench check ... | head -1``): its
    BrokenPipeError had ended the command with a traceback and exit 1 (a regression's
    status), before a measured run was saved. Once the reader has gone, what is written
    goes nowhere and the command finishes: its measurements saved, its exit status the
    verdict's."""

    def __init__(self, stream) -> None:
        self._stream, self.gone = stream, False

    def write(self, text: str) -> int:
        if not self.gone and self._stream is not None:   # None: Python started without the stream
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._left()
        return len(text)

    def flush(self) -> None:
        if not self.gone and self._stream is not None:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._left()

    def _left(self) -> None:
        self.gone = True
        try:   # what the stream still holds, and Python's own flush at exit, then go nowhere too
            nowhere = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(nowhere, self._stream.fileno())
            finally:
                os.close(nowhere)
        except (OSError, ValueError):   # a stream without a descriptor (a test's capture)
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def readers_may_leave():
    """Within it, stdout and stderr are :class:`ReaderGone`."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ReaderGone(sys.stdout), ReaderGone(sys.stderr)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):   # what is still buffered, while a reader's leaving is caught
            if isinstance(stream, ReaderGone):
                stream.flush()
        sys.stdout, sys.stderr = saved


class Stops:
    """Ctrl-C and SIGTERM (``timeout``, a SLURM time limit, ``docker stop``): the first raises
    KeyboardInterrupt where the command is, whose handling saves what finished and removes
    the worktrees it made; later ones are ignored until the command has, so that a second
    press cannot interrupt that (two quick presses lost every finished cell, and SIGTERM
    skipped the handling: no run saved, worktrees left)."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    @property
    def terminated(self) -> bool:
        return signal.SIGTERM in self.signals

    def __call__(self, signum, frame) -> None:
        self.signals.append(signum)
        if len(self.signals) == 1:
            raise KeyboardInterrupt
        os.write(2, b"distbench: stopping: what finished is being saved first (SIGKILL stops at once)\n")


@contextlib.contextmanager
def stops_once():
    """Within it, :class:`Stops` handles SIGINT and SIGTERM (in the main thread only); the
    handlers before it are back after it (main() may be called in a process that goes on)."""
    stops = Stops()
    if threading.current_thread() is not threading.main_thread():
        yield stops
        return
    before = {sig: signal.signal(sig, stops) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stops
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


class _StoreOnce(options.Once):
    """:class:`options.Once`, and an empty value is refused: ``report --out ""`` and ``compare
    --results ""`` ran on the default folder, or this one."""

    def __call__(self, parser, namespace, values, option_string=None):
        if isinstance(values, str) and not values.strip() and option_string not in OWN_EMPTY:
            valid = (self.help or "a value").replace("%%", "%")   # argparse's escape, for its own help only
            parser.error(f"{option_string} was given an empty value; valid: {valid}")
        super().__call__(parser, namespace, values, option_string)


# An empty side is the command line's cells as given (an A/A run); an empty --against has a refusal of its own.
OWN_EMPTY = ("--a", "--b", "--against")


def once_each(parser: argparse.ArgumentParser) -> None:
    """Every single-valued option of ``parser`` refuses a second value, and an empty one
    (:class:`_StoreOnce`)."""
    for action in parser._actions:   # argparse's own list: no public way to change an action's kind
        if action.option_strings and type(action) is argparse._StoreAction:
            action.__class__ = _StoreOnce
