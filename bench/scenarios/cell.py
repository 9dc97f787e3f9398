"""Child side: what every cell shares in its worker: devices, threads, strategy, device probe.

The parent (:mod:`distbench.session.suite`) has already planned the cell and decided that
it can run here (:func:`distbench.session.plan.skip_reason`); a worker process
(:mod:`distbench.worker`) calls :func:`run_cell` once, because device set-ups differ
between strategies and TensorFlow allows one per process. What the cell then does is its
workload kind's scenario (:mod:`distbench.scenarios.training`, :mod:`distbench.scenarios.matmul`).
Tests call it in-process on CPU logical devices.
"""

from __future__ import annotations

import time
from typing import Callable

import distbench.loops as loops
from distbench import plugins, strategies, workloads
from distbench.core import keras_flavour
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.core.records import CellRecord, skipped
from distbench.scenarios.definition import check_version, definition
from distbench.strategies import connect, devices, hardware, probe
from distbench.strategies.hardware import Hardware
from distbench.trackers import reads
from distbench.workloads.data import NAMED_SOURCES

# (spec, workload, adapter, strategy, hw, device names) -> the record's scenario part
Runner = Callable[..., dict]


def run_cell(spec: CellSpec, runner_for: Callable[[str], Runner], hw: Hardware | None = None) -> CellRecord:
    """Runs ``spec`` here and returns its record: the set-up every cell shares, then the
    scenario of the workload's kind (``runner_for(kind)``, from :mod:`distbench.scenarios.tasks`),
    noting the project's files it reads (:mod:`distbench.trackers.reads`)."""
    started = time.perf_counter()
    spec.validate()
    _import_as_the_fork_server_did(spec)
    reads.start(None if spec.data in NAMED_SOURCES else spec.data)
    try:
        record = _run(spec, runner_for, hw, started)
    finally:
        files = reads.stop()
    if "definition" in record:
        record["definition"]["files"] = files
    return record


def _run(spec: CellSpec, runner_for: Callable[[str], Runner], hw: Hardware | None, started: float) -> CellRecord:
    hw = hw or hardware.detect()
    if spec.strategy in strategies.STRATEGIES.names():   # not a user's: its set-up needs no plugin
        set_up(spec, hw)   # before the user's modules, one of which may run a TensorFlow op when imported
    plugins.ensure(spec)   # classes from outside distbench, as the parent loaded them
    workload = workloads.get(spec.workload)
    _check_versions(spec, workload)   # another version's worker running the working tree's code: refused
    if spec.loop is not None:
        loops.get(spec.loop)  # unknown loop names fail before any set-up
        loops.release_kept()  # an earlier in-process cell's input iterators (distbench.loops.base.keep)
        check_keras(spec)
    adapter, strategy = start_strategy(spec, hw)
    unusable = probe.unusable(list(dict.fromkeys(adapter.device_names(hw) + adapter.compute_devices(hw))),
                              spec.jit_compile)
    if unusable:
        return {**skipped(spec, unusable), "strategy": adapter.describe(strategy, hw)}
    set_up_s = time.perf_counter() - started
    record: CellRecord = {"cell": spec.id, "status": "ok", "config": spec.to_dict(),
                          "strategy": adapter.describe(strategy, hw)}
    if spec.loop is not None:
        record["keras"] = keras_flavour.package()
    record.update(runner_for(workload.kind)(spec, workload, adapter, strategy, hw, record["strategy"]["devices"]))
    # After the cell ran: a module the workload imported lazily (its optimizer's settings) counts.
    record["definition"] = definition(workload, spec.loop)
    _check_versions(spec, workload)   # and the modules it imported while it ran (a model built lazily)
    record["threads"] = devices.threads()
    record["wall_s"] = time.perf_counter() - started
    record.setdefault("phases", {})["set_up_s"] = set_up_s
    return record


def _check_versions(spec: CellSpec, workload) -> None:
    """Refuses, in a worker of another version of the project, the working tree's code in
    the cell's workload, or in its loop or strategy where they are the user's (a loop of
    an editable-installed package had run the working tree's on both sides: ``same``)."""
    check_version(type(workload))
    check_version(strategies.STRATEGIES.get(spec.strategy))
    if spec.loop is not None:
        check_version(loops.LOOPS.get(spec.loop))


def _import_as_the_fork_server_did(spec: CellSpec) -> None:
    """What the fork server imports before any fork (TensorFlow; Keras for a training cell),
    imported here by a fresh interpreter too, so that both launch modes begin noting the
    files read at the same point (what TensorFlow and Keras read as they load is theirs;
    Keras 3 read ./matplotlibrc through matplotlib until :mod:`distbench.core.keras_extras`)."""
    import tensorflow

    if spec.loop is not None:
        tensorflow.keras.layers  # noqa: B018 - the attribute access loads the lazy module


def check_keras(spec: CellSpec) -> None:
    """Refuses to train under another Keras than the cell's: ``TF_USE_LEGACY_KERAS`` acts
    only when the process starts (the launcher starts each flavour's workers with it), so
    a process whose ``tf.keras`` is the other one would measure the wrong library."""
    found = keras_flavour.current()
    if found != spec.keras:
        raise UserError(f"This worker's tf.keras is {found}, but the cell asks for {spec.keras}: "
                        f"{keras_flavour.ENV} must be set when its process starts "
                        f"({keras_flavour.ENV}={keras_flavour.environment(spec.keras)[keras_flavour.ENV]}).")


def set_up(spec: CellSpec, hw: Hardware) -> strategies.StrategyAdapter:
    """This process's thread pools and devices for ``spec`` (a repeat is a no-op); its adapter."""
    adapter = strategies.for_spec(spec)
    devices.set_threads(spec.intra_op_threads, spec.inter_op_threads)
    devices.apply(adapter.device_setup(hw))
    return adapter


def start_strategy(spec: CellSpec, hw: Hardware) -> tuple[strategies.StrategyAdapter, object]:
    """This process's thread pools and devices for ``spec``, then its strategy (once per process)."""
    adapter = set_up(spec, hw)
    strategy = adapter.build(hw)
    connect.joined()
    return adapter, strategy


def build_model(spec: CellSpec, workload, data, strategy):
    """The workload's model in the strategy's scope, initialised from the cell's training seed."""
    keras_flavour.api().utils.set_random_seed(spec.training_seed)
    with strategy.scope():
        return workload.new_model(data)
