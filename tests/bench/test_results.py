"""The read model: a cell's estimate, interval and metrics, computed once from its records."""

import pytest
from distbench.storage.results import CellResult, results_of

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
    assert result.status == "partly failed" and not result.whole and result.processes == 3 and result.failed_repeats == 1
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


def test_disturbance_by_hand_and_in_the_table():
    from distbench.render.run_table import row
    from distbench.trackers.disturbance import Snapshot, between

    # 10 s on 2 cores = 20 core-seconds; the machine was busy 9 s, this process 4 s: others 5 s = 25%.
    found = between(Snapshot(0.0, 100.0, 1.0, 10.0), Snapshot(10.0, 109.0, 1.4, 14.0), cores=2)
    assert found["others_cpu"] == pytest.approx(0.25) and found["steal"] == pytest.approx(0.02)
    assert found["disturbed"]
    quiet = between(Snapshot(0.0, 100.0, 1.0, 10.0), Snapshot(10.0, 110.0, 1.0, 19.0), cores=2)
    assert quiet["others_cpu"] == pytest.approx(0.05) and not quiet["disturbed"]
    rec = record(CELL, samples(10))
    rec["disturbance"] = found
    result = CellResult.of(CELL, [rec, record(CELL, samples(10))])
    assert "DISTURBED (1 of 2 processes): other processes used 25% of the CPU, steal 2%" in row(result)[-1]
