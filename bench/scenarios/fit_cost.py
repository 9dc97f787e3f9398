"""Child side: what the per-step timing callback costs ``fit`` (worker task ``overhead``).

In one process: pairs of back-to-back ``fit`` calls of the same compiled model over the
same data, with and without the callback, in alternating order (the same model and
process on both sides, so one process is the right unit): the median of the pairs'
wall-time ratios with a distribution-free interval
(:meth:`distbench.loops.fit.FitLoop.timing_cost`, which every fit cell also runs, with
fewer pairs; the parent says how many). The parent half of the overhead benchmark is :mod:`distbench.session.overhead`.
"""

from __future__ import annotations

import distbench.loops as loops
from distbench import workloads
from distbench.core.config import OVERHEAD_TARGET as TARGET
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.loops.base import compile_model, train_dataset
from distbench.scenarios.cell import build_model, start_strategy
from distbench.strategies import hardware
from distbench.trackers.timing import StepClock

FIT_STEPS = 25          # steps per fit call: short calls pair closely in time


def measure(spec: CellSpec) -> dict:
    """Here, in this process: what the per-step timing callback costs ``fit`` (a record),
    over ``spec.timing_cost_pairs`` pairs of calls (the parent sets them:
    :data:`distbench.session.overhead.FIT_PAIRS`)."""
    if spec.timing_cost_pairs < 1:
        raise UserError(f"The timing callback's cost needs at least one pair of fit calls; received "
                        f"{spec.timing_cost_pairs}.")
    workload = workloads.get(spec.workload)
    _, strategy = start_strategy(spec, hardware.detect())
    data = workload.load(spec.data, spec.seed)
    return {"cell": f"{spec.id}-fit-callback", "status": "ok", "config": spec.to_dict(),
            "fit": _fit_overhead(spec, workload, strategy, data, spec.timing_cost_pairs)}


def _fit_overhead(spec: CellSpec, workload, strategy, data, pairs: int) -> dict:
    """Wall time of ``fit`` with the harness's per-step timing callback over without it
    (the fit loop's own measurement, :meth:`FitLoop.timing_cost`, with more pairs)."""
    config = loops.TrainConfig(epochs=1, steps_per_epoch=FIT_STEPS, global_batch=spec.global_batch,
                               steps_per_execution=1, seed=spec.seed)
    ctx = loops.TrainContext(strategy, workload, build_model(spec, workload, data, strategy), data, config, StepClock())
    compile_model(ctx)
    ctx.model.fit(train_dataset(ctx), epochs=1, steps_per_epoch=FIT_STEPS, shuffle=False, verbose=0)   # traces the step
    cost = loops.get("fit").timing_cost(ctx, pairs, FIT_STEPS)
    return {**cost, "target": TARGET, "within_target": cost["ratio"] - 1 <= TARGET}
