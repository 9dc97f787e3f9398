"""Parent side: what a run will do, decided before any worker starts.

The matrix of cells (the cartesian product of the selection), the accuracy guard's
replicates, the overhead benchmark's cells, and each cell's skip reason, from the
adapters' side-effect-free checks: an unavailable strategy costs no process start.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterable

import distbench.loops as loops
from distbench import strategies, workloads
from distbench.core import keras_flavour
from distbench.core import targets as target
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.session import options
from distbench.strategies.base import SETTINGS
from distbench.strategies.hardware import Hardware
from distbench.strategies.multi_worker import TF_KERAS_HINT, tf_config
from distbench.workloads.data import NAMED_SOURCES, check_exists


def selected(requested: Iterable[str] | None, registry) -> list[str]:
    """The requested names (validated, in order, once each), or every registered name."""
    if not requested:
        return registry.names()
    names = list(dict.fromkeys(requested))
    for name in names:
        registry.get(name)  # raises UserError listing the valid names
    return names


def data_source(data: str) -> str:
    """A ``--data`` value as every worker reads it, for ``run`` and each side of ``ab``: a
    named source as given, a path made absolute where the command was typed (workers start
    elsewhere: another version's folder); UserError when it is neither a named source nor
    a path that exists."""
    return check_exists(data if data in NAMED_SOURCES or not data else os.path.abspath(data))


def check_data(data: str, cells: list[CellSpec]) -> None:
    """Refuses (UserError) a folder whose layout a training workload of ``cells`` does not
    take, for ``run``'s ``--data`` and each side's of ``ab`` alike (the text workloads check
    theirs; a user's ``data()`` reads its own, checked by the preflight)."""
    if data in NAMED_SOURCES:
        return
    for name, seed in dict.fromkeys((c.workload, c.seed) for c in cells if c.loop is not None):
        workloads.get(name).resolve_source(data, seed)


def build_cells(
    workload_names: Iterable[str] | None = None,
    strategy_names: Iterable[str] | None = None,
    loop_names: Iterable[str] | None = None,
    base: CellSpec | None = None,
    keras_names: Iterable[str] | None = None,
) -> list[CellSpec]:
    """The cartesian product of the selection (``None`` = all), validated.

    Each workload says which of the selection it runs (:meth:`cells`): a training
    workload every strategy x loop; matmul, which does not train, one cell per strategy
    that hands it devices to time, with no loop. Each training cell runs under every
    Keras flavour asked for; when none is, Keras 3, and for the strategies that train
    across processes also tf-keras (:func:`flavours`).
    """
    chosen_s = selected(strategy_names, strategies.STRATEGIES)
    chosen_l = selected(loop_names, loops.LOOPS)
    chosen_k = [keras_flavour.check(k) for k in dict.fromkeys(keras_names or ())]
    base = base or CellSpec.for_profile("quick", workload="", strategy="", loop=None)
    cells = []
    for w in selected(workload_names, workloads.WORKLOADS):
        cells += [read_only(base.replace(workload=w, strategy=s, loop=lp, keras=k))
                  for s, lp in workloads.get(w).cells(chosen_s, chosen_l) for k in flavours(s, lp, chosen_k)]
    for cell in cells:
        check_cell(cell)
    return cells


def check_cell(cell: CellSpec) -> None:
    """UserError for a cell that cannot run here, before any worker: its own settings, its
    local cluster (:func:`check_workers`), its matmul's memory (:func:`check_matmul_memory`).
    One list for ``run`` and for an ``ab`` or revision side (a side had missed the cluster's)."""
    cell.validate()
    check_workers(cell)
    check_matmul_memory(cell)


def check_matmul_memory(cell: CellSpec) -> None:
    """A matmul whose three float32 matrices alone need more than this machine's memory:
    refused before any worker (a worker that allocated it might be killed by the kernel,
    and take others with it)."""
    if cell.loop is not None:
        return
    import psutil

    m, k, n = cell.matmul_shape
    need, total = 4 * (m * k + k * n + m * n), psutil.virtual_memory().total
    if need > total:
        raise UserError(f"Matmul shape {m},{k},{n} needs {need / 2**30:.1f} GiB for its three float32 matrices, more "
                        f"than this machine's {total / 2**30:.1f} GiB of memory; give a smaller one (quick, seed "
                        "or M,K,N).")


# What only matmul reads (a cell without a loop): training cells keep the defaults.
MATMUL_SETTINGS = ("matmul_shape", "matmul_repeats")


def read_only(cell: CellSpec) -> CellSpec:
    """The cell with each setting it does not read at its default: ``--devices 4`` is for
    `virtual`, and a `default` cell given it is the same measurement, under the same id
    and comparable with its stored runs (``StrategyAdapter.reads``)."""
    unread = [f for f in SETTINGS if f not in strategies.STRATEGIES.get(cell.strategy).reads]
    unread += list(MATMUL_SETTINGS) if cell.loop is not None else []
    defaults = {f.name: f.default for f in dataclasses.fields(CellSpec) if f.name in unread}
    return cell.replace(**defaults)


def check_read(changes: dict, cells: list[CellSpec]) -> None:
    """UserError for a setting no cell reads (``--devices 4`` for `default` cells,
    ``--steps-per-execution`` for `custom`): its side would measure the other's cells, and
    its verdict be on nothing (:func:`read_only`, :func:`reads`)."""
    for name in changes:
        if not any(reads(c, name, changes[name]) for c in cells):
            raise UserError(f"no cell of this selection reads {options.BY_NAME[name].cli} (only {_readers(name)}): "
                            "both sides would measure the same cells.")


# What a cell reads beyond its strategy's settings: matmul (no loop) nothing of training's,
# only fit compiles steps_per_execution, and only a time-to-target cell evaluates on the way.
TRAINING_ONLY = ("epochs", "steps_per_epoch", "warmup_steps", "global_batch", "scaling", "data", "prefetch",
                 "init_seed", "eval_examples", "keras", "steps_per_execution", "eval_every", "max_steps")
BUILT_IN_LOOPS_WITHOUT_SPE = ("custom", "train_on_batch")   # a user's loop may compile with it


def reads(cell: CellSpec, name: str, value) -> bool:
    """Whether ``cell`` measures something else with setting ``name`` at ``value``."""
    if name in MATMUL_SETTINGS:
        return cell.loop is None
    if name in SETTINGS:   # read by the strategy, at any value: `--a "--workers 2"` (the default) beside B's 4 is
        return name in strategies.STRATEGIES.get(cell.strategy).reads   # a side, not a setting nothing reads
    if cell.loop is None:
        return name not in TRAINING_ONLY
    if name == "steps_per_execution":
        return cell.loop not in BUILT_IN_LOOPS_WITHOUT_SPE
    if name in ("eval_every", "max_steps"):
        return cell.target is not None
    return True


def _readers(name: str) -> str:
    """Who reads ``name``, for :func:`check_read`'s refusal."""
    if name in MATMUL_SETTINGS:
        return "matmul does"
    if name in SETTINGS:
        readers = [s for s in strategies.STRATEGIES.names() if name in strategies.STRATEGIES.get(s).reads]
        return f"{', '.join(readers)} do" if len(readers) > 1 else f"{readers[0]} does"
    if name == "steps_per_execution":
        return "the fit loop and loops of your own do"
    if name in ("eval_every", "max_steps"):
        return "time-to-target cells do, which ab and check --against do not run"
    return "training cells do, not matmul"


# The least memory one local cluster process holds of its own: psutil's USS of the two forked
# workers of `distbench run --workload reuters_cnn --data synthetic --strategy multi_worker
# --loop custom` was 199-261 MiB here (each shares its fork server's imported TensorFlow; a
# fresh interpreter's is about 500 MiB more).
LOCAL_PROCESS_MIB = 150


def check_workers(cell: CellSpec) -> None:
    """A local multi_worker cluster of N processes holds N replicas or a multiple: under
    strong scaling its global batch must divide by N (refused here, not by each worker).
    A local cluster whose processes cannot fit in this machine's memory at their least is
    refused too: started, they would be killed by the kernel, and might take others along."""
    adapter = strategies.for_spec(cell)
    _check_tf_config_workers(cell)
    processes = adapter.local_processes()
    if processes < 2:
        return
    if cell.strategy == "multi_worker" and cell.scaling == "strong" and cell.global_batch % processes:
        raise UserError(f"Global batch {cell.global_batch} is not divisible by the {processes} local workers of "
                        f"multi_worker (--workers); use a global batch that is a multiple of {processes}.")
    import psutil

    need, total = processes * LOCAL_PROCESS_MIB * 2**20, psutil.virtual_memory().total
    if need > total:
        options = "--workers, --ps" if cell.strategy == "parameter_server" else "--workers"
        raise UserError(f"{cell.strategy}'s {processes} local processes ({options}) need at least "
                        f"{need / 2**30:.1f} GiB ({LOCAL_PROCESS_MIB} MiB each, the least a worker holds beside "
                        f"its fork server's TensorFlow), more than this machine's {total / 2**30:.1f} GiB of "
                        "memory; give fewer.")


def _check_tf_config_workers(cell: CellSpec) -> None:
    """A TF_CONFIG (or SLURM) multi_worker cluster of N tasks holds N replicas or a multiple:
    a global batch that N does not divide was refused by each task only once all had joined
    (and never, with one missing: the connect deadline instead)."""
    config = tf_config() if cell.strategy == "multi_worker" and cell.scaling == "strong" else None
    cluster = (config or {}).get("cluster")
    if not isinstance(cluster, dict):
        return
    tasks = sum(len(cluster.get(role) or []) for role in ("chief", "worker"))
    if tasks > 1 and cell.global_batch % tasks:
        raise UserError(f"Global batch {cell.global_batch} is not divisible by the {tasks} tasks of TF_CONFIG's "
                        f"multi_worker cluster (a replica each at least); use a global batch that is a multiple of "
                        f"{tasks}.")


def flavours(strategy: str, loop: str | None, given: list[str]) -> list[str]:
    """The Keras flavours of a cell: those ``given``, else Keras 3, and tf-keras too where
    the strategy trains across processes (how teams train on several machines, since Keras
    3 does not support MultiWorkerMirroredStrategy: keras-team/keras#20585). A cell
    without a loop (matmul) has no Keras."""
    if loop is None:
        return ["keras3"]
    if given:
        return given
    return list(keras_flavour.FLAVOURS) if strategies.STRATEGIES.get(strategy).across_processes else ["keras3"]


def target_cells(cells: list[CellSpec], text: str, seeds: int) -> list[CellSpec]:
    """``cells`` with every training cell turned into a time-to-target cell (``--target
    text``): one process per training seed (``seeds``, the guard's, at least one), the
    workload's target resolved (``default``: its own for the data, which is resolved
    here). Cells that do not train (matmul) stay as they are."""
    out: list[CellSpec] = []
    for cell in cells:
        if cell.loop is None:
            out.append(cell)
            continue
        workload = workloads.get(cell.workload)
        data = workload.resolve_source(cell.data, cell.seed) if text == target.DEFAULT else cell.data
        goal = target.for_workload(text, workload, data)
        out += [cell.replace(target=goal.text, data=data, init_seed=cell.seed + k) for k in range(max(seeds, 1))]
    for cell in out:
        cell.validate()   # what a target cell adds (its --max-steps) is refused here, not in its workers
    return out


def overhead_cells(cells: list[CellSpec]) -> list[CellSpec]:
    """The harness-overhead benchmark's cells: the default strategy's custom loop of each
    training workload in ``cells`` (measured by :mod:`distbench.session.overhead`, not as cells)."""
    seen: dict[str, CellSpec] = {}
    for cell in cells:
        if cell.loop is not None and cell.workload not in seen:
            seen[cell.workload] = cell.plain("default", "custom")
    return list(seen.values())


def skip_reason(spec: CellSpec, hw: Hardware) -> str | None:
    """Why ``spec`` cannot run on ``hw`` (None when it can); quick and side-effect free."""
    adapter = strategies.for_spec(spec)
    availability = adapter.availability(hw)
    if not availability.ok:
        return availability.reason
    if spec.is_target and spec.strategy == "multi_worker":
        return ("multi_worker: time to target is not built for several workers (each would decide alone when "
                "to stop, and one that stops first leaves the others waiting in a collective)")
    if spec.is_target and spec.strategy == "parameter_server":
        return ("parameter_server: time to target is not built for scheduled steps (they are asynchronous; "
                "fit under this strategy takes epoch-level callbacks only)")
    workload = workloads.get(spec.workload)
    supported = getattr(workload, "keras_flavours", ("keras3",))
    unsupported = adapter.loop_unsupported(spec.loop) or (adapter.jit_unsupported(hw) if spec.jit_compile else None)
    if unsupported:   # the way round it, where the workload has that way
        return unsupported if "tf_keras" in supported else unsupported.replace(
            TF_KERAS_HINT, f" ({spec.workload} is written for {' and '.join(supported)} only)")
    if spec.loop is not None and spec.keras not in supported:
        return (f"{spec.workload}: written for {' and '.join(supported)}, not {spec.keras} "
                "(a workload lists the Keras it supports in keras_flavours; docs/own-model.md)")
    missing = keras_flavour.missing(spec.keras) if spec.loop is not None else None
    return missing or workload.unavailable(spec, adapter, hw)
