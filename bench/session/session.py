"""Parent side: one benchmark session for both front ends (the CLI's ``run`` and pytest).

Options are resolved once, from :mod:`distbench.session.options`' table, into a :class:`Session`
that plans the cells (with the accuracy guard's replicates), runs them (each repeat a
fresh process), judges them with the guard, saves them as one run and summarises it.
The CLI parses and dispatches; the pytest plugin adapts pytest's hooks to the same
calls. A run stopped by Ctrl-C keeps the cells that finished and is saved marked as
interrupted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from distbench import loops, plugins, strategies, workloads
from distbench.analysis import guard
from distbench.core import keras_flavour, references, targets
from distbench.core.config import CellSpec, parse_matmul_shape
from distbench.core.errors import UserError
from distbench.core.records import CellRecord, missing
from distbench.render import run_table
from distbench.session import options, overhead, peak
from distbench.session.plan import build_cells, check_data, data_source, overhead_cells, selected, target_cells
from distbench.session.suite import Interrupted, Suite
from distbench.storage import machine
from distbench.storage.files import save_run
from distbench.storage.results import CellResult, results_of
from distbench.strategies import slurm
from distbench.strategies.multi_worker import is_chief, tf_config
from distbench.workloads.data import keras_timeout_s


def base_spec(values: dict[str, Any]) -> CellSpec:
    """The CellSpec template from the profile and any explicit overrides."""
    fields = {o.name: values[o.name] for o in options.OPTIONS if o.spec_field and values.get(o.name) is not None}
    if values.get("matmul_shape"):
        fields["matmul_shape"] = parse_matmul_shape(values["matmul_shape"])
    fields["plugins"] = tuple(values.get("plugins") or ())
    return CellSpec.for_profile(values.get("profile") or "quick", workload="", strategy="", loop=None, **fields)


def check_given(values: dict[str, Any]) -> None:
    """The options given, checked without loading anything (references, data, devices):
    registered names, the cell's settings, counts (UserError naming the first wrong one).
    For a pytest run without ``--benchmark-only``, where the matrix does not run but a
    typo in ``--distbench-*`` (or in addopts) should not pass unseen."""
    for kind, registry in (("workload", workloads.WORKLOADS), ("strategy", strategies.STRATEGIES),
                           ("loop", loops.LOOPS)):
        selected([n for n in values.get(kind) or [] if not references.is_reference(n)], registry)
    check_settings(values)
    if values.get("target") and values["target"] != targets.DEFAULT:
        targets.parse(values["target"])
    for name in options.COUNTS:
        if values.get(name) is not None:
            _check_count(name, values[name])


def _check_count(name: str, value) -> None:
    refusal = options.count_refusal(name, value)
    if refusal:
        raise UserError(f"{options.BY_NAME[name].cli} must be {refusal}; received {value!r}.")


def check_settings(values: dict[str, Any]) -> None:
    """Every cell setting given, checked whichever cells read it: ``--workers 0`` ran a whole
    matrix without a cross-process cell, and saved it (UserError naming the first wrong one)."""
    for option in options.OPTIONS:   # an empty text ran as if not given: --target "" trained with no target
        if option.type is str and not option.repeatable:
            options.refuse_empty(option, values.get(option.name))
    spec = {k: v for k, v in values.items() if v is not None and k not in ("data", "plugins", "target")}
    base_spec({**spec, "data": None}).validate()


def resolve(values: dict[str, Any], repeats_default: int = 1) -> dict[str, Any]:
    """The option values with every default filled in and each checked (UserError if bad)."""
    resolved = {o.name: o.default for o in options.OPTIONS}
    resolved.update({k: v for k, v in values.items() if v is not None and v != []})
    if values.get("repeats") is None:
        resolved["repeats"] = repeats_default
    _check_count("repeats", resolved["repeats"])
    check_settings(values)
    _check_target_settings(resolved, values)
    if not resolved["keras"] and keras_flavour.asked_by_shell():   # as TensorFlow would read it
        resolved["keras"] = ["tf_keras"]
    # References (module:Class, file.py:Class) are loaded here and selected by name; the
    # cells carry them so that their workers load the same classes (distbench.plugins).
    resolved["plugins"] = plugins.load_selection(resolved)
    if resolved["data"] is not None:
        resolved["data"] = data_source(resolved["data"])
    resolved["results"] = os.path.abspath(resolved["results"])
    # In a SLURM job step the step is the cluster: TF_CONFIG from it, before anything reads it.
    single = ([s for s in resolved["strategy"] if not strategies.STRATEGIES.get(s).across_processes]
              if slurm.in_job_step() else None)   # a plugin's strategy says which it is
    slurm.apply(resolved["strategy"], resolved["ps"] or 1, single=single)
    _cluster_sizes(resolved, values)
    _check_count("guard_seeds", resolved["guard_seeds"])
    return resolved


def _check_target_settings(resolved: dict, given: dict) -> None:
    """A target's form whatever the selection (a malformed one was passed over when no cell
    trained), and what bounds a time-to-target run only with a target (given in a matrix
    file or to the pytest plugin, it ran as if not given)."""
    bounds = [options.BY_NAME[n].cli for n in ("max_steps", "eval_every") if given.get(n) is not None]
    if bounds and not resolved["target"]:
        raise UserError(f"{' and '.join(bounds)} {'bound' if len(bounds) > 1 else 'bounds'} a time-to-target run; "
                        "give --target too (without one, a run trains --epochs x --steps-per-epoch steps).")
    text = resolved["target"]
    if text and text != targets.DEFAULT:   # its form; each workload's metrics are checked with its cells
        targets.parse(text, directions=lambda metric: "lower" if "<=" in text else "higher")


CLUSTERED = {"multi_worker", "parameter_server"}   # the strategies whose cells a TF_CONFIG cluster runs


def _cluster_sizes(resolved: dict, typed: dict) -> None:
    """Under a TF_CONFIG cluster (a SLURM step's included) its workers and parameter servers
    are the cells' ``--workers`` and ``--ps``: the flags were recorded as given while the
    cluster ran, and stored runs of 2 and 1 workers were compared as one measurement. A
    typed value that disagrees with the cluster is refused."""
    chosen = resolved.get("strategy") or []   # none named: the whole matrix, cluster cells too
    if chosen and not CLUSTERED & set(chosen):
        return
    cluster = (tf_config() or {}).get("cluster")
    if not isinstance(cluster, dict):
        return
    ps = len(cluster.get("ps") or [])
    found = {"workers": len(cluster.get("worker") or []) + (0 if ps else len(cluster.get("chief") or [])), "ps": ps}
    for name, size in found.items():
        if not size:
            continue
        if typed.get(name) is not None and typed[name] != size:
            raise UserError(f"--{name} {typed[name]}: this process is a task of TF_CONFIG's cluster, which has {size} "
                            f"{'worker' if name == 'workers' else 'parameter server'}{'s' * (size != 1)}; the cluster decides: leave "
                            f"--{name} out (or give {size}).")
        resolved[name] = size


@dataclass
class Session:
    """One run: its resolved options, its plan, the records as they arrive, and the save."""

    values: dict[str, Any]
    given_suite: Suite | None = None        # a suite to run with (tests give one); else made on first use
    records: dict[str, list[CellRecord]] = field(default_factory=dict)
    overhead: list[dict] = field(default_factory=list)
    peak: dict | None = None                # the devices' measured peak (distbench.scenarios.peak), once per run
    interrupted: bool = False
    selected: list[CellSpec] | None = None   # the cells a front end chose to run (pytest's -k); None: the plan
    selected_overhead: list[CellSpec] | None = None   # and of the overhead benchmarks; None: overhead_plan
    saved: Path | None = None
    unsaved: str = ""                       # why the save failed, and where the run is kept instead
    project: str | None = None              # the project's folder (its matrix file's), whose commit a run records
    begun: bool = False                     # a cell's first process was started (pytest runs the plan cell by cell)

    @classmethod
    def from_options(cls, values: dict[str, Any], repeats_default: int = 1, suite=None,
                     matrix: str | None = None) -> "Session":
        """``matrix``: the project's matrix file, whose folder is the project's (None: the
        working directory's)."""
        session = cls(resolve(values, repeats_default), suite, project=os.path.dirname(matrix) if matrix else None)
        session.plan   # validates the selection and the spec before anything runs
        if session.values["data"] is not None:
            check_data(session.values["data"], session.plan)
        tf_config()    # TF_CONFIG that is not JSON: refused now, not when the run is saved
        keras_timeout_s()   # and a DISTBENCH_KERAS_TIMEOUT that is no number of seconds
        return session

    @cached_property
    def base(self) -> CellSpec:
        return base_spec(self.values)

    @cached_property
    def plan(self) -> list[CellSpec]:
        """The cells to run, each workload's guard replicates after its cells; with
        ``--target``, time-to-target cells, one process per guard seed, and no replicates."""
        chosen = [self.values[kind] or None for kind in ("workload", "strategy", "loop", "keras")]
        if tf_config():   # a cluster's tasks pair their cells in order: one order, however each task's was typed
            chosen = [sorted(names) if names else None for names in chosen]
        cells = build_cells(*chosen[:3], self.base, chosen[3])
        if self.values["target"]:
            return target_cells(cells, self.values["target"], self.values["guard_seeds"])
        return guard.with_replicates(cells, self.values["guard_seeds"])

    @cached_property
    def overhead_plan(self) -> list[CellSpec]:
        return overhead_cells(self.plan) if self.values["overhead"] else []

    @property
    def repeats(self) -> int:
        return self.values["repeats"]

    @property
    def saving(self) -> bool:
        return not self.values["no_save"] and is_chief(tf_config())

    @cached_property
    def suite(self) -> Suite:
        """What runs the cells in worker processes (made when first needed: it lists the
        machine's devices, which imports TensorFlow)."""
        return self.given_suite if self.given_suite is not None else Suite()

    def _refuse_a_worker_that_saves_nothing(self) -> None:
        """A non-chief TF_CONFIG task leaves saving to its chief; with no cluster cell selected
        (a TF_CONFIG left in the shell) no chief ever saves what it measures: it measured,
        said "Not saved", and exited 0."""
        chosen = self.values["strategy"] or []   # none named: the whole matrix, cluster cells too
        if self.values["no_save"] or self.saving or not chosen or CLUSTERED & set(chosen):
            return
        task = (tf_config() or {}).get("task", {})
        raise UserError(f"TF_CONFIG makes this process {task.get('type')} {task.get('index')} of a cluster, which "
                        f"leaves saving to its chief, but no selected cell is a cluster's ({', '.join(chosen)}): "
                        "nothing measured here would be saved. Unset it (export TF_CONFIG=) to measure and save "
                        "them here, or give --no-save.")

    def check_writable(self) -> None:
        """Fails before hours of benchmarking, not after, when results cannot be saved."""
        import errno
        import tempfile

        self._refuse_a_worker_that_saves_nothing()
        if not self.saving:   # --no-save, or a worker of a TF_CONFIG cluster that is not its chief
            return
        folder = self.values["results"]
        # Checked where the folder would be made, without making it: a run refused later
        # (its data, its model) leaves no empty results folder behind.
        existing = os.path.abspath(folder)
        while not os.path.exists(existing):
            if os.path.islink(existing):   # its saving failed with "File exists", the run measured
                raise UserError(f"Cannot write results under {folder!r}: {existing} is a symbolic link to "
                                f"{os.readlink(existing)}, which does not exist (a volume not mounted?). Pass --results "
                                "DIR or --no-save.")
            existing = os.path.dirname(existing)
        try:
            if not os.path.isdir(existing):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            with tempfile.TemporaryFile(dir=existing):
                pass
        except OSError as exc:
            raise UserError(
                f"Cannot write results under {folder!r}: {exc.strerror}. Pass --results DIR or --no-save."
            ) from None
        # This machine's folder in it, where its id is known without TensorFlow (made by
        # another user, or a file): the run would be measured and then not saved there.
        quick = machine.quick_machine_id() if os.path.isdir(folder) else None
        mine = os.path.join(folder, quick) if quick else None
        if mine and os.path.lexists(mine) and not (os.path.isdir(mine) and os.access(mine, os.W_OK | os.X_OK)):
            raise UserError(f"Cannot write results under {mine!r}: this machine's folder there is "
                            f"{'not writable' if os.path.isdir(mine) else 'not a folder'}. Pass --results DIR "
                            "or --no-save.")

    def run_all(self, progress=None) -> None:
        """Runs the plan, ``repeats`` fresh processes per cell; Ctrl-C keeps what finished."""
        self.suite.preflight(self.plan)   # a user's workload that cannot run is refused before any timing
        try:
            self.measure_peak()
            self.records = self.suite.run_all(self.plan, self.repeats, progress)
            self.overhead = [self.run_overhead(spec, progress) for spec in self.overhead_plan]
        except Interrupted as stop:
            self.records, self.interrupted = stop.results, True
        except KeyboardInterrupt:
            self.interrupted = True

    def run_cell(self, spec: CellSpec) -> list[CellRecord]:
        """``repeats`` fresh processes of one cell (pytest runs the plan cell by cell; the
        workloads of the cells it selected are checked at its first cell)."""
        self.begun = True   # the check and the peak are processes of it too
        self.suite.preflight(self.plan if self.selected is None else self.selected)
        self.measure_peak()
        found = []
        for _ in range(self.repeats):   # each kept as it ends: Ctrl-C in the next keeps it, as `run` does
            found.append(self.suite.run(spec))
            self.records.setdefault(spec.id, []).append(found[-1])
        return found

    def measure_peak(self) -> None:
        """Once per run, in its own process: what this machine's devices reach at a matmul
        shape that reaches peak, and their memory bandwidth (:mod:`distbench.scenarios.peak`); every
        cell's share of the peak is read against it. Not with ``--no-peak``."""
        if self.peak is not None or self.values["no_peak"] or not self.plan:
            return
        spec = self.base.replace(workload="matmul", strategy="default", loop=None)
        self.peak = self.suite.run(spec, task="peak")

    def run_overhead(self, spec: CellSpec, progress=None) -> dict:
        """The harness-overhead benchmark of ``spec``: bare-loop and harness processes, paired."""
        if progress:
            progress.overhead(spec)
        return overhead.paired(self.suite, spec, getattr(progress, "pair", None))

    def cell_records(self) -> dict[str, list[CellRecord]]:
        """Cell id -> its records; an interrupted run also lists the planned cells that never
        ran (no records: ``missing`` to every reader), so that nobody mistakes it for whole; so
        does a pytest run whose selected cells the project's fixtures skipped or failed first."""
        never = "the run was interrupted before this cell finished (in flight, or not started)"
        chosen = self.plan if self.selected is None else self.selected
        if not self.interrupted and self.selected is not None:   # pytest's: a cell the project's fixture skipped
            never = ("it never reached distbench: pytest skipped it or failed its set-up first (a fixture or hook of "
                     "the project's; pytest's report says why)")
        cells = {spec.id: [missing(spec, never)] for spec in chosen} if self.interrupted or self.selected else {}
        cells.update({c: reps for c, reps in self.records.items() if reps})
        return cells

    @property
    def planned_repeats(self) -> dict[str, int]:
        """Cell id -> the processes the run plans for it: ``repeats`` per spec (a
        time-to-target cell's seeds share its id, so count them all)."""
        planned: dict[str, int] = {}
        for spec in self.plan if self.selected is None else self.selected:
            planned[spec.id] = planned.get(spec.id, 0) + self.repeats
        return planned

    @property
    def ran(self) -> bool:
        """Whether any process of a cell ran (Ctrl-C before the first: the plan's cells, none)."""
        return any(self.records.values())

    @property
    def all_ran(self) -> bool:
        """Whether every planned process ran: each selected cell's repeats and each overhead
        benchmark (pytest's ``-x`` after the last cell's failure cut nothing short)."""
        ran = {c: len(reps) for c, reps in self.records.items()}
        overhead = self.overhead_plan if self.selected_overhead is None else self.selected_overhead
        return all(ran.get(c, 0) >= n for c, n in self.planned_repeats.items()) and len(self.overhead) >= len(overhead)

    @property
    def results(self) -> dict[str, CellResult]:
        return results_of(self.cell_records(), self.planned_repeats)

    def finish(self) -> Path | None:
        """Judges the run with the accuracy guard and saves it (when asked to); the path."""
        guard.apply(results_of({c: reps for c, reps in self.records.items() if reps}))
        peak.apply(self.records, self.peak)
        if (self.ran or self.overhead) and self.saving:   # Ctrl-C before any: nothing to keep
            extra = {"peak": self.peak} if self.peak else None
            plan = {"repeats": self.planned_repeats, "guard_seeds": self.values["guard_seeds"]}
            self.saved = save_run(self.cell_records(), self.values["results"], self.overhead, self.interrupted,
                                  extra, plan=plan, project=self.project)
        return self.saved

    @property
    def exit_status(self) -> int:
        """``run``'s: 1 when a process failed (a cell's, the overhead's, or one that skipped
        where its cell's other processes measured); 3 when nothing was measured (every cell
        skipped); else 0. (An interrupted run's is the caller's: 130.)"""
        results = self.results.values()
        if (any(r.get("status") == "error" for reps in self.records.values() for r in reps)
                or any(overhead.failed(r) for r in self.overhead)
                or any(res.ok and res.failed_repeats for res in results)):
            return 1
        measured = any(res.ok for res in results) or any(r.get("status") == "ok" for r in self.overhead)
        return 0 if measured or not (self.records or self.overhead) else 3

    def summary(self, fmt: str = "table") -> str:
        """The run as the user reads it: the 120-column summary in a terminal, the full
        table with ``--full-table`` or any other format."""
        return run_table.run_summary(self.results, fmt, self.overhead, self.interrupted, self.peak,
                                     full=bool(self.values.get("full_table")))
