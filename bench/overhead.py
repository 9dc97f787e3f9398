"""Harness overhead: the harness's cell against an independent bare TensorFlow loop.

Parent side (:func:`paired`): processes of the harness's own cell (the default strategy's
custom loop, timed exactly as every cell) and of a bare loop written with TensorFlow and
the workload's definition only (:mod:`bench.bare`, its own process) run as interleaved
pairs (:mod:`bench.ab`): A bare, B harness, in A B B A order. The overhead is the pairs'
ratio B/A, with its interval; the target is at most +3%.

An earlier version ran both sides in one process, step by step, with the same clock,
loop and sync: its ratio was close to 1 by construction (issue 9). Against a bare loop
in its own process, the harness's cell was 8% slower in 5 of 6 pairs then.

Child side (:func:`measure_fit`, worker task ``overhead``): what the per-step timing
callback costs ``fit``'s wall time, in one process: pairs of back-to-back ``fit`` calls
of the same compiled model over the same data, with and without the callback, in
alternating order (the same model and process on both sides, so one process is the
right unit): the median of the pairs' wall-time ratios with a distribution-free interval
(:meth:`bench.loops.fit.FitLoop.timing_cost`, which every fit cell also runs, with fewer pairs).
"""

from __future__ import annotations

from bench.config import CellSpec
from bench.errors import UserError
from bench.timing import StepClock

TARGET = 0.03           # the target: the harness adds at most 3% to the median step
FIT_PAIRS = 60          # pairs of fit calls, with and without the timing callback
FIT_STEPS = 25          # steps per fit call: short calls pair closely in time
MIN_PAIRS, MAX_PAIRS = 3, 8


def paired(suite, spec: CellSpec, progress=None, fit_pairs: int = FIT_PAIRS, env: dict | None = None) -> dict:
    """The overhead record of ``spec``: bare-vs-harness process pairs, then fit's callback.

    ``env``: extra environment for the harness side only (tests inject a delay with it).
    """
    from bench import ab

    if spec.loop != "custom" or spec.strategy != "default":
        raise UserError(f"The overhead benchmark compares the default strategy's custom loop with a bare "
                        f"TensorFlow loop; received {spec.strategy}/{spec.loop}.")
    bare = ab.Side("A", "bare TensorFlow loop (bench.bare)", task="bare")
    harness = ab.Side("B", "harness: the default strategy's custom loop", env=env or {})
    engine = ab.Interleaved(bare, harness, lambda s, side: suite.run(s, side.env, side.root, side.task),
                            threshold=TARGET, min_pairs=MIN_PAIRS, max_pairs=MAX_PAIRS, progress=progress)
    (cell,) = engine.run([spec], suite.skip_reason)
    if cell.failure:
        return {**cell.failure, "cell": f"{spec.id}-overhead"}
    j = cell.judgement
    record = {"cell": f"{spec.id}-overhead", "status": "ok", "config": spec.to_dict(), "overhead": {
        "method": "interleaved process pairs: bare TensorFlow loop (A) and the harness's cell (B)",
        "pairs": j.pairs, "ratio": j.ratio, "ratio_ci": list(j.interval) if j.interval else None,
        "added": j.ratio - 1, "target": TARGET, "within_target": j.ratio - 1 <= TARGET,
        "interval_within_target": bool(j.interval) and j.interval[1] - 1 <= TARGET,
        "log_ratios": cell.log_ratios, "p_value": j.p_value, "smallest_p": j.smallest_p,
        "bare": [a["step_time"]["median"] for a, _ in cell.pairs],
        "harness": [b["step_time"]["median"] for _, b in cell.pairs]}}
    if fit_pairs:
        fit = suite.run(spec, task="overhead")
        record["overhead"]["fit"] = fit.get("fit") if fit.get("status") == "ok" else {"error": fit.get("reason")}
    return record


def measure_fit(spec: CellSpec, pairs: int = FIT_PAIRS) -> dict:
    """Here, in this process: what the per-step timing callback costs ``fit`` (a record)."""
    import workloads
    from bench.cell import start_strategy
    from strategies import hardware

    workload = workloads.get(spec.workload)
    _, strategy = start_strategy(spec, hardware.detect())
    data = workload.load_data(spec.data, spec.seed)
    return {"cell": f"{spec.id}-fit-callback", "status": "ok", "config": spec.to_dict(),
            "fit": _fit_overhead(spec, workload, strategy, data, pairs)}


def _fit_overhead(spec: CellSpec, workload, strategy, data, pairs: int) -> dict:
    """Wall time of ``fit`` with the harness's per-step timing callback over without it
    (the fit loop's own measurement, :meth:`FitLoop.timing_cost`, with more pairs)."""
    import bench.loops as loops
    from bench.cell import build_model
    from bench.loops.base import compile_model, train_dataset

    config = loops.TrainConfig(epochs=1, steps_per_epoch=FIT_STEPS, global_batch=spec.global_batch,
                               steps_per_execution=1, seed=spec.seed)
    ctx = loops.TrainContext(strategy, workload, build_model(spec, workload, data, strategy), data, config, StepClock())
    compile_model(ctx)
    ctx.model.fit(train_dataset(ctx), epochs=1, steps_per_epoch=FIT_STEPS, shuffle=False, verbose=0)   # traces the step
    cost = loops.get("fit").timing_cost(ctx, pairs, FIT_STEPS)
    return {**cost, "target": TARGET, "within_target": cost["ratio"] - 1 <= TARGET}
