"""Parent side: one side of a comparison (``ab``'s ``--a``/``--b``, a version of the project for
``check --against`` and ``bisect``): what it sets, its workers' environment and its code, read
from the words the user typed and checked before anything runs."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field, replace
from typing import Callable

from distbench.core import keras_flavour
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.core.worktrees import VERSION_ENV
from distbench.launchers.forkserver import WORKER_ENV
from distbench.launchers.trees import CodeTree
from distbench.session.plan import check_cell, check_data, check_read, data_source, read_only, reads
from distbench.session.project import Checkout


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its name (A or B), what it is, and how it differs."""

    name: str
    label: str
    changes: dict = field(default_factory=dict)   # CellSpec fields this side sets
    env: dict = field(default_factory=dict)       # environment variables of its workers
    checkout: Checkout | None = None              # its version of the project (None: as it is here)
    task: str = "cell"                            # what its workers do (distbench.worker's tasks)
    inherited: dict = field(default_factory=dict)  # the command's value (None: unset) of a variable the other side sets

    def settings(self, base: CellSpec) -> CellSpec:
        """``base`` with this side's settings, those the cell reads (the rest stay at their defaults,
        or the plan's: a custom cell of a side given ``--steps-per-execution 10`` had stored 10)."""
        return read_only(base.replace(**{k: v for k, v in self.changes.items() if reads(base, k, v)}))

    def spec(self, base: CellSpec) -> CellSpec:
        """The cell as this side runs it: its settings, its version's data and plugins placed."""
        spec = self.settings(base)
        return self.checkout.spec(spec) if self.checkout else spec

    @property
    def tree(self) -> CodeTree | None:
        """The code its workers run and the folder they start in (None: here, installed)."""
        return self.checkout.tree if self.checkout else None

    @property
    def of_version(self) -> bool:
        """A side of another version of the project (``check --against``, ``bisect``): its
        settings come from that version's matrix file and its workloads are that version's
        code, where an ``ab`` side's are this tree's with options of its own."""
        return bool(self.checkout and self.checkout.commit)

    @property
    def worker_env(self) -> dict:
        """Its workers' environment: ``env``, and for another version of a user's project the
        paths its workers check their workload's modules against
        (:func:`distbench.scenarios.definition.check_version`)."""
        if not self.of_version or self.checkout.project.is_distbench:
            return self.env
        paths = os.pathsep.join((self.checkout.project.root, self.checkout.path))
        return {**self.env, VERSION_ENV: paths}

    def with_env(self, env: dict) -> "Side":
        return replace(self, env=env)

    def describe(self) -> dict:
        """The side as the stored run names it: with the command's value (None: unset) of a
        variable the other side sets, which its workers inherited (a run of
        ``TF_ENABLE_ONEDNN_OPTS=0`` in the shell and ``--b "TF_ENABLE_ONEDNN_OPTS=1"`` had
        stored side A as setting nothing)."""
        return {"label": self.label, "changes": self.changes, "env": self.env,
                **({"inherited": self.inherited} if self.inherited else {}),
                "code": self.checkout.describe() if self.checkout else {}}


def no_difference(a: Side, b: Side, spec_a: CellSpec, spec_b: CellSpec) -> str:
    """Why a cell, as each side runs it (``spec_a``, ``spec_b``: :meth:`Side.spec`), is no
    comparison of the sides ('' when it is one): ab sides whose options
    this cell does not read (``--steps-per-execution`` for custom) ran it the same on both,
    and its pairs of the same cell ended UNDECIDED, failing the command (a user's trial). Sides
    given alike (an A/A run, to see the noise) are compared as asked."""
    if a.of_version or b.of_version or a.changes == b.changes or a.env != b.env or spec_a != spec_b:
        return ""
    return f"the sides run it alike: it reads none of the options that tell them apart ({a.label}; {b.label})"


def with_inherited(a: Side, b: Side, environ=os.environ) -> tuple[Side, Side]:
    """The sides, each with the command's own value of a variable only the other sets (what
    its workers inherit: `TF_ENABLE_ONEDNN_OPTS A (as inherited), B 1` said not which)."""
    names, started = {*a.env, *b.env}, {**environ, **WORKER_ENV}   # as its workers start (forkserver.start_env)
    return tuple(replace(side, inherited={k: started.get(k) for k in sorted(names - set(side.env))})
                 for side in (a, b))


def parse_side(name: str, text: str, parse_options: Callable[[list[str]], dict]) -> Side:
    """A side from its words: ``NAME=VALUE`` sets an environment variable, the rest are
    run options (``--intra-op-threads 1``) that change the cell's spec."""
    try:
        words = shlex.split(text or "")
    except ValueError as exc:
        raise UserError(f"Bad side {name} {text!r}: {exc} (quote a value with spaces whole, e.g. "
                        "--a \"XLA_FLAGS='--xla_cpu_multi_thread_eigen=false'\").") from None
    assigns = _env_words(words)
    env = dict(w.split("=", 1) for w in assigns)
    twice = next((n for n in env if sum(w.split("=", 1)[0] == n for w in assigns) > 1), None)
    if twice is not None:
        raise UserError(f"Side {name} ({text}): {twice} is set twice; give each variable once.")
    bad = next((n for n in env if not ENV_NAME.fullmatch(n)), None)
    if bad is not None:
        raise UserError(f"Side {name} ({text}): {bad!r} is not an environment variable name; a name is a letter or _ "
                        "followed by letters, digits or _ ([A-Za-z_][A-Za-z0-9_]*), e.g. TF_ENABLE_ONEDNN_OPTS=0.")
    if keras_flavour.ENV in env:
        raise UserError(f"Bad side {name} {text!r}: {keras_flavour.ENV} is the cell's Keras flavour; give "
                        f"--keras tf_keras (or keras3) on the side instead.")
    try:   # named with the side and all it was given (it named the leftover words only)
        changes = parse_options([w for w in words if w not in assigns])
    except UserError as exc:
        raise UserError(f"Side {name} ({text}): {exc}") from None
    if changes.get("data") is not None:   # checked, and made absolute where the command was typed, as run's --data
        try:
            changes["data"] = data_source(changes["data"])
        except UserError as exc:
            raise UserError(f"Side {name} ({text}): {exc}") from None
    return Side(name, text or "(as given)", changes, env)


def validate_side(side: Side, cells: list[CellSpec]) -> None:
    """Refuses, before anything runs, a side whose options make an impossible cell (``--b
    "--global-batch 0"``) or name data ``run`` would refuse (``--b "--data nosuch"``),
    naming the side."""
    try:
        specs = [side.spec(spec) for spec in cells]
        for spec in specs:
            check_cell(spec)
        if side.changes.get("data") is not None and specs:
            check_data(specs[0].data, specs)
        if not side.of_version:   # an ab side's own options (not a version's matrix file)
            check_read(side.changes, cells)
    except UserError as exc:
        raise UserError(f"Side {side.name} ({side.label}): {exc}") from None


# What a shell (POSIX's portable names) would take as a variable's name: the side's
# NAME=VALUE words become its workers' environment, where anything else is no variable.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_words(words: list[str]) -> list[str]:
    """The ``NAME=VALUE`` words (``http_proxy=...`` too): any word with ``=`` that is neither
    an option nor the value of the option before it (every side option takes one value,
    ``--data a=b``; ``--data=a`` carries its own)."""
    return [w for k, w in enumerate(words)
            if "=" in w and not w.startswith("-")
            and not (k and words[k - 1].startswith("-") and "=" not in words[k - 1])]
