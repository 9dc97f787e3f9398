"""Parent side: runs planned cells, one fresh worker process per cell (or a local cluster).

Skips were decided by :mod:`distbench.session.plan` from the adapters' side-effect-free checks, so
an unavailable strategy costs no process start. ``data: auto`` is resolved here once per
workload (a Keras download is tried once per run, not once per cell; by a worker, when this
process has not imported TensorFlow).
"""

from __future__ import annotations

import os
import time
from typing import Callable

from distbench import strategies, workloads
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.core import references, targets
from distbench.core.records import CellRecord, short_reason, skipped
from distbench.launchers import cluster
from distbench.launchers import process as launcher
from distbench.launchers.trees import CodeTree
from distbench.session.plan import skip_reason
from distbench.strategies.hardware import Hardware
from distbench.workloads import data as data_sources

Progress = Callable[[int, int, CellSpec, CellRecord, float], None]


class Interrupted(Exception):
    """Ctrl-C during a run; ``results`` holds every repeat that finished before it."""

    def __init__(self, results: dict[str, list[CellRecord]]) -> None:
        super().__init__("interrupted")
        self.results = results


class Suite:
    """Runs cells in worker processes and remembers how ``auto`` data resolved."""

    def __init__(self, hw: Hardware | None = None, launch=launcher.launch, launch_cluster=cluster.launch_cluster,
                 listing_env: dict | None = None) -> None:
        self._hw = hw
        self._listing_env = listing_env or {}   # the environment of the fork server that lists the devices
        self._launch = launch
        self._launch_cluster = launch_cluster
        self._sources: dict[tuple[str, str, int], str] = {}
        self._checked: dict[tuple, dict] = {}
        self._worker_skipped: dict[CellSpec, CellRecord] = {}   # cells a worker found it can never run

    @property
    def hw(self) -> Hardware:
        """This machine's devices (listed by a worker, on first use: :func:`launcher.machine`)."""
        if self._hw is None:
            self._hw = launcher.machine(self._listing_env)
        return self._hw

    def prepare(self, spec: CellSpec) -> CellSpec:
        """``spec`` with its data source resolved (``auto`` -> ``keras`` or ``synthetic``)."""
        key = (spec.workload, spec.data, spec.seed)
        if key not in self._sources:
            self._sources[key] = _source(spec)
        return spec.replace(data=self._sources[key])

    def preflight(self, specs: list[CellSpec]) -> None:
        """Checks each user workload of ``specs`` once (per data, seed and Keras), in one
        worker, before any cell runs: UserError, in one line, for data that does not fit its
        model, a dataset already batched, a guard or target metric it does not compute."""
        for spec in specs:
            if spec.loop is None or not getattr(workloads.get(spec.workload), "preflight", False):
                continue
            if self.skip_reason(spec):
                continue
            key = _checked_key(spec)
            if key not in self._checked:
                self._checked[key] = self._check(spec)
            if self._checked[key] is not None:
                _check_target(spec, self._checked[key])

    def guard_metric(self, spec: CellSpec) -> tuple[str, str] | None:
        """``spec``'s guard metric and which way is better: a user workload's as its preflight
        found them (None before it, or when it was no verdict), a built-in one's as declared."""
        workload = workloads.get(spec.workload)
        if getattr(workload, "preflight", False):
            found = self._checked.get(_checked_key(spec))
            return (found["guard_metric"], found["directions"][found["guard_metric"]]) if found else None
        metric = workload.guard()
        return metric, workload.direction(metric)

    def _check(self, spec: CellSpec) -> dict | None:
        """The preflight's findings; UserError when the workload refused its input or its
        code raised. A check whose process crashed or timed out is no verdict on the
        input: None, and the cells run, each failing (closed) on its own if the cause is
        the workload's."""
        plain = spec.replace(strategy="default", target=None, init_seed=None)
        record = self._launch(self.prepare(plain), task="preflight")
        if record.get("status") == "ok":
            return record["preflight"]
        kind = record.get("error_kind")
        if kind in ("crash", "timeout"):
            return None
        flavour = f" under {spec.keras} (its keras_flavours lists it)" if spec.keras != "keras3" else ""
        prefix = "" if kind == "user_error" else f"{spec.workload}{flavour}: checking its data and model failed: "
        reason = short_reason(record)
        if "FileNotFoundError" in reason or "No such file" in reason:   # a path relative to where the command was typed
            reason += f" (its worker ran in {os.getcwd()}, where relative paths are read from)"
        shadow = references.stdlib_shadow(reason, [os.getcwd(), *references.plugin_folders(spec.plugins)])
        reason += "" if shadow in reason else shadow   # a worker's failed import has it already
        raise UserError(f"{prefix}{reason}")

    def run(self, spec: CellSpec, env: dict | None = None, tree: CodeTree | None = None,
            task: str = "cell") -> CellRecord:
        """One process (or cluster) of ``spec``; its record, ``skipped`` when it cannot run here.

        ``env`` and ``tree``: the workers' extra environment, and their code and folder
        (a side of an interleaved A/B; default: the installed distbench, here).
        """
        reason = self.skip_reason(spec)
        if reason:
            return skipped(spec, reason)
        where = {k: v for k, v in (("env", env), ("tree", tree)) if v}
        if spec in self._worker_skipped and not where:   # its next repeats: the same code, the same answer
            return self._worker_skipped[spec]
        if strategies.for_spec(spec).local_processes() > 1:
            record = self._launch_cluster(self.prepare(spec), **where)
        else:
            record = self._launch(self.prepare(spec), task=task, **where)
        if record.get("status") == "skipped" and record.get("lasting") and not where and task == "cell":
            self._worker_skipped[spec] = record
        return record

    def skip_reason(self, spec: CellSpec) -> str | None:
        return skip_reason(spec, self.hw)

    def run_all(
        self, specs: list[CellSpec], repeats: int = 1, progress: Progress | None = None
    ) -> dict[str, list[CellRecord]]:
        """Runs each cell ``repeats`` times, each time in a fresh process; cell id -> records.

        Repeats go round the whole matrix (cell 1, 2, ..., then again), so a slow spell
        of the machine spreads over cells instead of landing on one. Ctrl-C raises
        :class:`Interrupted` carrying what finished (the worker in flight is killed).
        """
        if not isinstance(repeats, int) or repeats < 1:
            raise UserError(f"Repeats must be an integer >= 1; received {repeats!r}.")
        started = time.monotonic()
        results: dict[str, list[CellRecord]] = {spec.id: [] for spec in specs}
        total, k = len(specs) * repeats, 0
        try:
            for _ in range(repeats):
                for spec in specs:
                    record = self.run(spec)
                    results[spec.id].append(record)
                    k += 1
                    if progress:
                        progress(k, total, spec, record, time.monotonic() - started)
        except KeyboardInterrupt:
            raise Interrupted(results) from None
        return results


def _check_target(spec: CellSpec, found: dict) -> None:
    """A target cell's metric is one its workload computes (``found``: its preflight)."""
    if spec.target is None:
        return
    targets.require_metric(targets.parse(spec.target).metric, spec.workload, found["test_metrics"])


def _source(spec: CellSpec) -> str:
    """``spec``'s data source resolved; ``auto`` of a workload with a Keras dataset is asked
    of a worker (:func:`launcher.data_source`) and a fallback announced here, as in process."""
    workload = workloads.get(spec.workload)
    loader = getattr(workload, "keras_loader", None)
    if spec.data == "auto" and loader is not None and loader() is not None:
        asked = launcher.data_source(spec)
        if asked is not None:
            source, why = asked
            if why:
                data_sources.announce_fallback(spec.workload, why, spec.seed)
            return source
    return workload.resolve(spec).data


def _checked_key(spec: CellSpec) -> tuple:
    """What a user workload's preflight is checked once for: its data, seed and Keras."""
    return spec.workload, spec.data, spec.seed, spec.keras, spec.plugins
