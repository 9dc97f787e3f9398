"""The one table of run options, read by both front ends.

The CLI adds each option as ``--name``; the pytest plugin as ``--distbench-name``. The
defaults live here and nowhere else; :class:`distbench.session.session.Session` resolves the values
once (pytest-benchmark's ``BenchmarkSession`` does the same for its options).
"""

from __future__ import annotations

import argparse
import re
import weakref

from dataclasses import dataclass
from typing import Any, Callable

from distbench.core.config import COMMUNICATIONS, CROSS_DEVICE_OPS, PROFILES, SCALINGS, parse_matmul_shape
from distbench.core.errors import UserError
from distbench.core.keras_flavour import FLAVOURS as KERAS_FLAVOURS


@dataclass(frozen=True)
class Option:
    """One option: its name (``global_batch``), type, default and help."""

    name: str
    help: str
    type: Callable | None = None
    default: Any = None
    choices: tuple | None = None
    repeatable: bool = False      # --workload a --workload b
    flag: bool = False            # store_true
    spec_field: bool = False      # goes straight into CellSpec

    @property
    def cli(self) -> str:
        return "--" + self._word

    @property
    def pytest(self) -> str:
        return "--distbench-" + self._word

    @property
    def _word(self) -> str:
        """``deadline_s`` is ``deadline`` on the command line (seconds are implied)."""
        name = self.name[:-2] if self.name.endswith("deadline_s") else self.name
        return name.replace("_", "-")

    @property
    def pytest_dest(self) -> str:
        return "distbench_" + self.name

    def argparse_kwargs(self, dest: str) -> dict:
        if self.flag:   # a cell's flag not given is None: an ab side that leaves it out changes nothing
            return {"action": "store_true", "dest": dest, "help": self.help, **({"default": None} if self.spec_field else {})}
        # No default here: an option the command line leaves unset is None, so that the matrix
        # file (distbench.session.matrix_file) can fill it; the session fills the defaults (distbench.session.session).
        kwargs = {"dest": dest, "help": self.help, "default": [] if self.repeatable else None}
        kwargs["action"] = "append" if self.repeatable else Once
        if self.type:
            kwargs["type"] = self.type
        if self.choices:
            kwargs["choices"] = self.choices
        return kwargs


class Once(argparse._StoreAction):
    """A single-valued option given twice in one command line is refused: argparse keeps the
    last without a word (``--target accuracy=0.5 --target loss<=1`` ran to the loss alone;
    ``check --baseline 24 --baseline 25`` in a CI gate quietly changed the verdict)."""

    def __call__(self, parser, namespace, values, option_string=None):
        last = getattr(self, "_last", None)
        if last is not None and last[0]() is namespace:
            parser.error(f"{option_string} was given twice ({last[1]} and {values}); it takes one value")
        self._last = (weakref.ref(namespace), values)
        super().__call__(parser, namespace, values, option_string)


def _spec(name: str, type_: Callable, help_: str, **kw) -> Option:
    return Option(name, help_, type_, spec_field=True, **kw)


# A session's counts: the least and the most each may be (processes per cell; the plan is
# built whole before the first: --guard-seeds 1000000000 grew by 95 MB a second, silent).
COUNTS = {"repeats": (1, 1000), "guard_seeds": (0, 1000)}


def refuse_empty(option: "Option", value) -> None:
    """UserError for an empty text given to ``option``, which would read as not given (or,
    for a folder, as this one)."""
    if isinstance(value, str) and not value.strip():
        raise UserError(f"{option.cli} was given an empty value; valid: {option.help}.")


def count_refusal(name: str, value) -> str:
    """Empty when ``value`` is a count ``name`` may be (:data:`COUNTS`; a bool is none), else
    what is valid: ``an integer from 1 to 1000``."""
    least, most = COUNTS[name]
    if isinstance(value, int) and not isinstance(value, bool) and least <= value <= most:
        return ""
    return f"an integer from {least} to {most}" + (" (0 or 1 turns the accuracy guard off)"
                                                   if name == "guard_seeds" else "")


OPTIONS: tuple[Option, ...] = (
    Option("workload", "a workload to run (repeatable; default: all)", repeatable=True),
    Option("strategy", "a strategy to run (repeatable; default: all)", repeatable=True),
    Option("plugin", "load a workload, strategy or loop class (module:Class or path/file.py:Class) without "
           "selecting it, e.g. to select it by its name (repeatable)", repeatable=True),
    Option("loop", "a training loop to run (repeatable; default: all)", repeatable=True),
    Option("keras", "keras3 or tf_keras (Keras 2, the tf-keras package) for the training cells (repeatable; "
           "default: keras3, and both for the strategies that train across processes)", repeatable=True,
           choices=KERAS_FLAVOURS),
    Option("profile", f"{' or '.join(PROFILES)} (default quick)", str, "quick"),
    _spec("epochs", int, "epochs per cell (default: the profile's)"),
    _spec("steps_per_epoch", int, "default: quick 100, full the whole training set"),
    _spec("warmup_steps", int, "steps after the first that are not timed (default 5)"),
    _spec("global_batch", int, "global batch (default 32); with --scaling weak, per replica"),
    _spec("scaling", str, "strong: global batch fixed (default); weak: per-replica batch fixed", choices=SCALINGS),
    _spec("steps_per_execution", int, "for fit (forced to 1 under multi-replica mirrored)"),
    _spec("jit_compile", bool, "compile the training step with XLA (every loop; names cells ...-xla), as tune's "
          "XLA candidates do", flag=True),
    _spec("devices", int, "logical devices for the virtual strategy (default 2)"),
    _spec("virtual_memory_mb", int, "memory of each logical GPU the virtual strategy carves from GPU 0 (default 2048)"),
    _spec("cross_device_ops", str, "mirrored/virtual all-reduce: auto (TensorFlow's choice; NCCL on GPUs), nccl, "
          "hierarchical_copy or one_device (where NCCL fails or hangs: containers, PCIe without peer access)",
          choices=CROSS_DEVICE_OPS),
    _spec("communication", str, "multi_worker collectives: auto (NCCL on GPUs, else ring), ring or nccl",
          choices=COMMUNICATIONS),
    _spec("workers", int, "local worker processes for multi_worker and parameter_server without TF_CONFIG "
          "(default 2)"),
    _spec("ps", int, "local parameter servers for parameter_server without TF_CONFIG (default 1)"),
    _spec("data", str, "auto (default), keras, synthetic, or a folder of class sub-folders"),
    _spec("prefetch", str, "the input pipeline's last prefetch: auto (tf.data.AUTOTUNE, default), N batches, or off "
          "(also none of tf.data's own run-ahead: injected prefetch, map-and-batch fusion, parallel maps); "
          "names cells ...-prefetch_off"),
    _spec("seed", int, "data seed, and by default the training seed (default 0)"),
    _spec("init_seed", int, "training seed only (weights, shuffle order), the data unchanged; names cells ...-initN"),
    _spec("eval_examples", int, "test examples to evaluate (default: quick 5000)"),
    Option("matmul_shape", "quick, seed (the published 10000x100 @ 100x100000) or M,K,N", str),
    _spec("matmul_repeats", int, "timed products per device (default 10)"),
    _spec("timing_cost_pairs", int, "fit cells, after they are measured: pairs of short fit calls with and without "
          "the per-step timing callback, to report what timing costs fit (default 5; 0: not measured, nor in the "
          "overhead benchmark)"),
    _spec("intra_op_threads", int, "TensorFlow intra-op threads per worker (0: default; at most 64 per usable CPU)"),
    _spec("inter_op_threads", int, "TensorFlow inter-op threads per worker (0: default; at most 64 per usable CPU)"),
    _spec("deadline_s", float, "seconds per cell before its processes are killed (default 900)"),
    _spec("connect_deadline_s", float, "seconds a TPU cell may take to connect to and initialise its TPU, a "
          "parameter_server or TF_CONFIG multi_worker cell to reach the rest of its cluster, before it fails with a "
          "timeout (default 180; the cell's --deadline still bounds the whole)"),
    Option("target", "train each training cell until METRIC=VALUE on the test examples (e.g. accuracy=0.6), "
           "or 'default' (each workload's), once per seed of --guard-seeds (--repeats: processes per seed); reports "
           "time to target", str),
    _spec("eval_every", int, "with --target: steps between evaluations, the same for every cell (default 25)"),
    _spec("max_steps", int, "with --target: the step budget; a seed that has not reached the target by then is "
          "'not reached' (default 1000)"),
    Option("repeats", "run each cell N times, each in a fresh process (default 1; tune: 3; at most 1000)", int, 1),
    Option("guard_seeds", "training seeds of the reference cell (default fit) for the accuracy guard "
           "(default 5; 0 or 1: no guard; at most 1000)", int, 5),
    Option("results", "the results folder (default: results)", str, "results"),
    Option("no_save", "do not save the run under results/", flag=True),
    Option("no_peak", "do not measure the devices' peak matmul speed and bandwidth (one process per run; "
           "without it no cell shows its share of the peak)", flag=True),
    Option("full_table", "print the full table (every column, as the report has it) instead of the summary "
           "that fits 120 columns", flag=True),
    Option("overhead", "also measure the harness's overhead against a bare TensorFlow loop "
           "(default strategy, custom loop, each selected training workload)", flag=True),
)

BY_NAME = {o.name: o for o in OPTIONS}


def add_to_argparse(parser, names: tuple[str, ...] | None = None, refused: tuple[str, ...] = ()) -> None:
    """Adds the options (all, or ``names``) to an argparse parser; those in ``refused`` are
    parsed (a command refuses them in one line, saying what to use) but not in its help."""
    import argparse

    for option in OPTIONS:
        if names is None or option.name in names:
            kwargs = option.argparse_kwargs(option.name)
            parser.add_argument(option.cli, **{**kwargs, "help": argparse.SUPPRESS} if option.name in refused else kwargs)


def add_to_pytest(group) -> None:
    """Adds every option to pytest's ``distbench`` group as ``--distbench-NAME``. A
    single-valued one keeps its last value and counts its uses: pytest puts ``addopts``
    before the typed arguments, and what is typed overrides it (:func:`given_twice`); a
    repeatable one counts its uses too (:func:`keep_latest_place`)."""
    for option in OPTIONS:
        kwargs = option.argparse_kwargs(option.pytest_dest)
        if kwargs["action"] in (Once, "append"):
            kwargs["action"] = _Counted if kwargs["action"] is Once else _CountedAppend
        group.addoption(option.pytest, **kwargs)


class _Counted(argparse.Action):
    """pytest's single-valued option: the last value, each use noted (:func:`given_twice`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _note_use(namespace, option_string)


class _CountedAppend(argparse._AppendAction):
    """pytest's repeatable option: every value, each use noted (:func:`keep_latest_place`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        _note_use(namespace, option_string)


USES = "distbench_uses"   # the namespace's count of each option's uses


def _note_use(namespace, flag: str) -> None:
    uses = dict(getattr(namespace, USES, None) or {})
    uses[flag] = uses.get(flag, 0) + 1
    setattr(namespace, USES, uses)


def _counts(flag: str, uses: int, places: dict[str, list[str]]) -> dict[str, int]:
    """How many times ``flag`` was given in each place, the ini file's addopts the rest."""
    counts = {where: sum(w == flag or w.startswith(flag + "=") for w in words) for where, words in places.items()}
    counts["in the ini file's addopts"] = uses - sum(counts.values())
    return counts


def keep_latest_place(namespace, places: dict[str, list[str]]) -> None:
    """A repeatable ``--distbench-*`` option keeps the values of the latest place that gives
    it (``places`` as for :func:`given_twice`, typed first): typed ``--distbench-strategy
    default`` replaces the ini file's ``addopts`` strategies, as a single-valued option's
    value does, instead of adding to them (pytest reads addopts, then PYTEST_ADDOPTS, then
    what is typed, so the latest place's values are the last ones)."""
    repeatable = {o.pytest: o.pytest_dest for o in OPTIONS if o.repeatable}
    for flag, uses in (getattr(namespace, USES, None) or {}).items():
        if flag in repeatable:
            latest = next(n for n in _counts(flag, uses, places).values() if n)
            setattr(namespace, repeatable[flag], getattr(namespace, repeatable[flag])[-latest:])


def given_twice(namespace, places: dict[str, list[str]]) -> str | None:
    """The single-valued ``--distbench-*`` option given twice in one place (``places``: its
    words by where they came from, the typed ones and PYTEST_ADDOPTS; the ini file's
    addopts are the rest), named; None when each place gives it once at most (the later
    place's value overrides: typed over PYTEST_ADDOPTS over the ini file)."""
    single = {o.pytest for o in OPTIONS if not o.repeatable and not o.flag}
    for flag, uses in (getattr(namespace, USES, None) or {}).items():
        if flag not in single:
            continue
        twice = next((where for where, n in _counts(flag, uses, places).items() if n > 1), None)
        if twice:
            return (f"{flag} was given twice {twice}; it takes one value (one typed overrides PYTEST_ADDOPTS', "
                    "which overrides the ini file's)")
    return None


def from_namespace(args, prefix: str = "") -> dict[str, Any]:
    """The option values of an argparse namespace or pytest config (``prefix`` distbench_)."""
    return {o.name: getattr(args, prefix + o.name, None) for o in OPTIONS}


# What argparse should take as a value even though it starts with a dash (its own pattern
# takes -1 but not -1,10,10, which it then reports as a missing value): the option that
# reads it refuses it and says what is valid.
NEGATIVE_VALUE = re.compile(r"^-\d[\d.,]*%?$|^-\.\d+%?$")   # -5% too (plan --detect)


# What a side of an A/B comparison may change: the cell's fields, its matmul shape and its Keras.
SPEC_OPTIONS = tuple(o.name for o in OPTIONS if o.spec_field or o.name in ("matmul_shape", "keras"))


def spec_changes(words: list[str]) -> dict[str, Any]:
    """CellSpec fields set by run options given as words (``--intra-op-threads 1``):
    one side of an A/B comparison. Anything else is refused, naming what is valid."""
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str):
            raise UserError(f"Bad side options {' '.join(words)!r}: {message}. Valid: "
                            + ", ".join(BY_NAME[n].cli for n in SPEC_OPTIONS) + ", and NAME=VALUE for the environment.")

    selection = [w.split("=")[0] for w in words if w.split("=")[0] in ("--workload", "--strategy", "--loop")]
    if selection:   # what names the cells is the selection of both sides, not what tells them apart
        raise UserError(f"Bad side options {' '.join(words)!r}: {selection[0]} selects the cells both sides run (give "
                        f"it outside --a and --b); to compare loops or strategies with each other, `distbench run "
                        f"{selection[0]} X {selection[0]} Y` measures each, and `distbench tune` ranks the loops of a "
                        "strategy and confirms the fastest against plain fit, interleaved.")

    parser = _Parser(prog="side", add_help=False)
    parser._negative_number_matcher = NEGATIVE_VALUE
    add_to_argparse(parser, SPEC_OPTIONS)
    values = {k: v for k, v in vars(parser.parse_args(words)).items() if v is not None}
    if "matmul_shape" in values:
        values["matmul_shape"] = parse_matmul_shape(values["matmul_shape"])
    flavours = values.pop("keras", [])
    if len(set(flavours)) > 1:
        raise UserError(f"Bad side options {' '.join(words)!r}: one --keras per side; received {', '.join(flavours)}.")
    if flavours:
        values["keras"] = flavours[0]
    return values


def as_pytest(message: str) -> str:
    """``message`` with each option's command-line flag (``--repeats``) named as pytest's
    (``--distbench-repeats``): the refusals say what the user typed."""
    flags = {o.cli: o.pytest for o in OPTIONS}
    return re.sub(r"(?<![\w-])--[a-z][a-z-]*(?![\w-])", lambda m: flags.get(m.group(0), m.group(0)), message)
