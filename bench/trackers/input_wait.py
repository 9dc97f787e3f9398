"""Input-bound or compute-bound: the share of step time spent waiting for the next batch.

The first thing to rule out when a strategy "does not scale" is a step that waits on its
input pipeline. The custom loop and ``train_on_batch`` time the iterator's ``get_next``
apart from the rest of the step (the custom loop between two ``tf.timestamp`` ops ordered
around it inside its ``tf.function``), so a cell's wait share is measured: the summed
waits of its steady steps over their summed step times. ``fit`` calls ``get_next`` inside
Keras's own step function, where no callback reaches; for it the same pipeline is timed
alone after training (a fresh iterator, nothing consuming but the timer), which bounds
the wait from above: a step never waits longer than the pipeline takes to make one batch.
A cell whose share (or bound) is above :data:`INPUT_BOUND_SHARE` is marked input-bound.

Child side; timing code only times (the loops hand their waits to the clock).
"""

from __future__ import annotations

import time

from distbench.core import stats

INPUT_BOUND_SHARE = 0.25      # marked input-bound above a quarter of the step waiting for input
PROBE_BATCHES, PROBE_WARMUP = 20, 3

MEASURED = "get_next timed apart from the step"
BOUND = "the input pipeline timed alone after training (fit runs get_next inside its step): an upper bound"
NOT_MEASURED = "not measured: the steps run on the parameter-server cluster's workers"


def probe(dataset, batches: int = PROBE_BATCHES, warmup: int = PROBE_WARMUP) -> float:
    """The median seconds a fresh iterator of ``dataset`` takes to yield one batch, after
    ``warmup`` batches (buffers filled), with nothing else consuming."""
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    times = []
    for _ in range(batches):
        began = time.perf_counter()
        next(iterator)
        times.append(time.perf_counter() - began)
    return stats.percentile(times, 50)


def measured(clock, steady: int) -> dict:
    """The wait share of the last ``steady`` units of ``clock`` (the loop timed each wait)."""
    waits, durations = clock.waits[-steady:], clock.durations[-steady:]
    share = sum(waits) / sum(durations) if durations and sum(durations) > 0 else 0.0
    return _record(MEASURED, share, wait_s_median=stats.percentile(waits, 50) if waits else None)


def bounded(per_batch_s: float, step_s: float) -> dict:
    """The wait share's upper bound: the pipeline's time per batch over the median step."""
    return _record(BOUND, min(1.0, per_batch_s / step_s) if step_s > 0 else 1.0, pipeline_s_per_batch=per_batch_s,
                   at_most=True)


def not_measured() -> dict:
    return {"method": NOT_MEASURED, "wait_share": None, "input_bound": None, "threshold": INPUT_BOUND_SHARE}


def _record(method: str, share: float, **extra) -> dict:
    return {"method": method, "wait_share": share, "input_bound": share > INPUT_BOUND_SHARE,
            "threshold": INPUT_BOUND_SHARE, **extra}
