"""Parent side: harness overhead: the harness's cell against an independent bare TensorFlow loop.

Parent side (:func:`paired`): processes of the harness's own cell (the default strategy's
custom loop, timed exactly as every cell) and of a bare loop written with TensorFlow and
the workload's definition only (:mod:`distbench.scenarios.bare`, its own process) run as interleaved
pairs (:mod:`distbench.session.interleave`): A bare, B harness, in A B B A order. The overhead is the pairs'
ratio B/A, with its interval; the target is at most +3%.

An earlier version ran both sides in one process, step by step, with the same clock,
loop and sync: its ratio was close to 1 by construction (issue 9). Against a bare loop
in its own process, the harness's cell was 8% slower in 5 of 6 pairs then.

Its second part, what the per-step timing callback costs ``fit``, runs in a worker
(:mod:`distbench.scenarios.fit_cost`, worker task ``overhead``): :data:`FIT_PAIRS` pairs
of fit calls, passed to it as the spec's ``timing_cost_pairs``; none when the cell's own
``timing_cost_pairs`` is 0 (``--timing-cost-pairs 0``: the timing callback's cost is
not measured anywhere).
"""

from __future__ import annotations

from distbench.core.config import OVERHEAD_TARGET as TARGET
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.session import interleave
from distbench.session.side import Side

FIT_PAIRS = 60          # pairs of fit calls, with and without the timing callback
MIN_PAIRS, MAX_PAIRS = 3, 8


def paired(suite, spec: CellSpec, progress=None, fit_pairs: int | None = None, env: dict | None = None) -> dict:
    """The overhead record of ``spec``: bare-vs-harness process pairs, then fit's callback.

    ``fit_pairs``: pairs of fit calls for the callback's cost (default :data:`FIT_PAIRS`,
    none when ``spec.timing_cost_pairs`` is 0). ``env``: extra environment for the harness
    side only (tests inject a delay with it).
    """
    if fit_pairs is None:
        fit_pairs = FIT_PAIRS if spec.timing_cost_pairs else 0
    if fit_pairs < 0:
        raise UserError(f"Pairs of fit calls must be >= 0 (0: not measured); received {fit_pairs}.")
    if spec.loop != "custom" or spec.strategy != "default":
        raise UserError(f"The overhead benchmark compares the default strategy's custom loop with a bare "
                        f"TensorFlow loop; received {spec.strategy}/{spec.loop}.")
    bare = Side("A", "bare TensorFlow loop (distbench.scenarios.bare)", task="bare")
    harness = Side("B", "harness: the default strategy's custom loop", env=env or {})
    engine = interleave.Interleaved(bare, harness, interleave.through(suite),
                            threshold=TARGET, min_pairs=MIN_PAIRS, max_pairs=MAX_PAIRS, progress=progress)
    (cell,) = engine.run([spec], suite.skip_reason)
    if cell.failure:
        return {**cell.failure, "cell": f"{spec.id}-overhead"}
    if cell.skipped:   # a side's worker cannot run it (a model with its own train_step): no pair to read
        return {"cell": f"{spec.id}-overhead", "status": "skipped", "reason": cell.skipped, "config": spec.to_dict()}
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
        fit = suite.run(spec.replace(timing_cost_pairs=fit_pairs), task="overhead")
        record["overhead"]["fit"] = fit.get("fit") if fit.get("status") == "ok" else {"error": fit.get("reason")}
    else:
        record["overhead"]["fit"] = {"not_measured": "--timing-cost-pairs 0" if not spec.timing_cost_pairs
                                     else "no pairs of fit calls asked for"}
    return record


def failed(record: dict) -> bool:
    """Whether a process of the overhead benchmark failed: one of its pairs', or the one
    that times fit with and without the timing callback (whose failure the record holds
    beside the pairs' figures, which still stand)."""
    fit = record.get("overhead", {}).get("fit") or {}
    return record.get("status") == "error" or "error" in fit
