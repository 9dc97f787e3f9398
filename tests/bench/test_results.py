"""The read model: a cell's estimate, interval and metrics, computed once from its records."""

import pytest

from bench.results import CellResult, results_of
from tests.bench.runs import record, samples

CELL = "reuters_cnn-default-fit"


def _failed(cell=CELL):
    return {"cell": cell, "status": "error", "reason": "worker pid 7 was killed by SIGKILL\nmore",
            "config": {"workload": "reuters_cnn", "strategy": "default", "loop": "fit"}}


def test_the_estimate_is_the_median_of_process_medians_over_every_ok_repeat():
    # Hand-computed: process medians 10, 30 and 20 ms -> 20 ms; throughput 32 / 0.020 = 1600 ex/s.
    reps = [_failed(), record(CELL, [0.009, 0.010, 0.011]), record(CELL, [0.030] * 3, accuracy=0.4),
            record(CELL, [0.019, 0.020, 0.021], accuracy=0.6)]
    result = CellResult.of(CELL, reps)
    assert result.status == "ok" and result.processes == 3 and result.failed_repeats == 1
    assert result.process_medians == pytest.approx([0.010, 0.030, 0.020])
    assert result.median == pytest.approx(0.020)
    assert result.throughput == pytest.approx(1600)
    assert result.interval[0] <= result.median <= result.interval[1]
    assert result.accuracy == pytest.approx((0.5 + 0.4 + 0.6) / 3)
    assert result.spec.id == CELL and result.spec.label == "fit"


def test_a_cell_that_never_ran_ok_says_why_on_one_line():
    result = CellResult.of(CELL, [_failed()])
    assert not result.measured and result.status == "error"
    assert result.reason == "worker pid 7 was killed by SIGKILL ... more"
    assert CellResult.of(CELL, []).status == "missing"


def test_identity_comes_from_the_spec_not_from_splitting_the_id():
    rec = record("multibranch-default-fit-spe50-xla", samples(10))
    rec["config"].update({"steps_per_execution": 50, "jit_compile": True, "init_seed": 2})
    result = results_of({"x": [rec]})["x"]
    assert result.spec.label == "fit-spe50-xla-init2"
    assert result.spec.is_replicate and not result.spec.is_plain_fit and not result.spec.is_reference
