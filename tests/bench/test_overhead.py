import pytest

from bench import overhead, stats, tables
from bench.errors import UserError


def test_paired_ratio_and_interval_hand_computed():
    # Round medians: a 10, 20; b 11, 22 -> both rounds 1.1. The rounds' levels differ 2x
    # (a drift), but every resample keeps the pairs together, so the interval is exact.
    a = [[9.0, 10.0, 11.0], [18.0, 20.0, 22.0]]
    b = [[x * 1.1 for x in r] for r in a]
    assert stats.paired_ratio(a, b) == pytest.approx(1.1)
    lo, hi = stats.paired_bootstrap_ratio_ci(a, b)
    assert (lo, hi) == (pytest.approx(1.1), pytest.approx(1.1))
    # An unpaired interval over the same drifting rounds cannot see the 10%.
    ulo, uhi = stats.hierarchical_bootstrap_ratio_ci(a, b)
    assert ulo < 1 < uhi


def test_bootstrap_median_ci_brackets_the_median():
    lo, hi = stats.bootstrap_median_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert 1.0 <= lo <= 3.0 <= hi <= 5.0


def test_interleaved_clock_runs_one_bare_step_after_each_recorded_step():
    calls = []
    clock = overhead.InterleavedClock(lambda: calls.append(len(clock.durations)))
    for _ in range(3):
        clock.start()
        clock.stop()
    assert calls == [1, 2, 3]          # each bare step ran after its harness step was recorded
    assert len(clock.bare) == len(clock.durations) == 3


def test_measure_in_process_records_both_sides(tiny):
    spec = tiny("reuters_cnn", "default", "custom", steps_per_epoch=10, warmup_steps=2)
    record = overhead.measure(spec, rounds=2, fit_pairs=3)
    o = record["overhead"]
    assert record["cell"] == "reuters_cnn-default-custom-overhead" and record["status"] == "ok"
    assert o["rounds"] == 2 and [len(r) for r in o["harness"]["samples"]] == [7, 7]   # 10 - cold - 2 warm-up
    assert [len(r) for r in o["bare"]["samples"]] == [7, 7]
    assert o["ratio"] == pytest.approx(stats.paired_ratio(o["bare"]["samples"], o["harness"]["samples"]))
    assert o["ratio_ci"][0] <= o["ratio"] <= o["ratio_ci"][1]
    assert o["within_target"] is (o["added"] <= overhead.TARGET)
    line, fit_line = tables.overhead_lines(record)
    assert line.startswith("reuters_cnn-default-custom-overhead: the harness adds ") and "3% target" in line
    f = o["fit"]
    assert f["pairs"] == len(f["ratios"]) == 3 and all(r > 0 for r in f["ratios"])
    assert f["ratio"] == pytest.approx(stats.percentile(f["ratios"], 50))
    assert fit_line.startswith("reuters_cnn-default-fit-overhead: the per-step timing callback adds ")


def test_measure_refuses_other_cells(tiny):
    with pytest.raises(UserError, match="default strategy's custom loop.*received virtual/fit"):
        overhead.measure(tiny("reuters_cnn", "virtual", "fit"))
