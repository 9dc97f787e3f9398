"""The harness-overhead benchmark: the harness's cell against a bare loop in its own process."""

import textwrap

import pytest

from bench import overhead, stats, tables
from bench.errors import UserError


def test_bootstrap_median_ci_brackets_the_median():
    lo, hi = stats.bootstrap_median_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert 1.0 <= lo <= 3.0 <= hi <= 5.0


def test_the_bare_loop_trains_the_workload_without_the_harness(tiny):
    from bench.bare import measure

    record = measure(tiny("reuters_cnn", "default", "custom", steps_per_epoch=10, warmup_steps=2))
    assert record["status"] == "ok" and record["bare"] == {"metrics": "workload"}
    assert len(record["steps"]["samples"]) == 7            # 10 - cold start - 2 warm-up
    assert record["step_time"]["median"] > 0


def test_fit_callback_cost_is_measured_in_pairs(tiny):
    record = overhead.measure_fit(tiny("reuters_cnn", "default", "custom", steps_per_epoch=10), pairs=3)
    f = record["fit"]
    assert f["pairs"] == len(f["ratios"]) == 3 and all(r > 0 for r in f["ratios"])
    assert f["ratio"] == pytest.approx(stats.percentile(f["ratios"], 50))


def test_overhead_refuses_other_cells(tiny):
    with pytest.raises(UserError, match="default strategy's custom loop.*received virtual/fit"):
        overhead.paired(None, tiny("reuters_cnn", "virtual", "fit"))


@pytest.mark.slow
def test_the_benchmark_finds_a_delay_injected_into_the_harness(tmp_path, tiny):
    """The harness side's workers sleep 30% of every timed step (a sitecustomize on their
    PYTHONPATH); the bare loop is untouched. The benchmark must report about +30%."""
    from bench.suite import Suite

    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(textwrap.dedent("""
        import time
        from bench import timing

        _stop = timing.StepClock.stop

        def stop(self, steps=1):
            time.sleep(0.3 * (self._timer() - self._start))
            _stop(self, steps)

        timing.StepClock.stop = stop
    """))
    spec = tiny("reuters_cnn", "default", "custom", steps_per_epoch=40)
    record = overhead.paired(Suite(), spec, fit_pairs=0, env={"PYTHONPATH": str(slow)})
    o = record["overhead"]
    assert record["status"] == "ok" and not o["within_target"], o
    assert o["ratio_ci"][0] > 1 + overhead.TARGET        # the added time is found, beyond the target
    assert tables.overhead_line(record).startswith("reuters_cnn-default-custom-overhead: the harness adds +")


def test_the_overhead_line_passes_only_what_the_interval_shows():
    def line(ratio, ci):
        record = {"cell": "w-default-custom-overhead", "status": "ok", "config": {}, "overhead": {
            "pairs": 6, "ratio": ratio, "ratio_ci": ci, "added": ratio - 1, "target": 0.03,
            "bare": [0.01] * 6, "harness": [0.01 * ratio] * 6}}
        return tables.overhead_line(record)

    assert "within the 3% target" in line(1.005, [0.98, 1.028])
    assert "not shown within the 3% target" in line(1.01, [0.97, 1.06])   # the point is within, the interval not
    assert "ABOVE the 3% target" in line(1.10, [1.05, 1.15])
