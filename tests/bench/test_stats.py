import math

import pytest
from distbench.core import stats

# Hand-computed reference: samples 1..10 (ms). Definition 7 percentiles (Hyndman & Fan
# 1996), as numpy.percentile and R's quantile(type=7): rank h = (n-1) q/100.
SAMPLES = [float(x) for x in range(1, 11)]


def test_percentiles_match_definition_7_by_hand():
    # n=10: p10 -> h=0.9 -> 1 + 0.9*(2-1) = 1.9; p25 -> h=2.25 -> 3.25; median -> h=4.5 -> 5.5
    assert stats.percentile(SAMPLES, 10) == pytest.approx(1.9)
    assert stats.percentile(SAMPLES, 25) == pytest.approx(3.25)
    assert stats.percentile(SAMPLES, 50) == pytest.approx(5.5)
    assert stats.percentile(SAMPLES, 75) == pytest.approx(7.75)
    assert stats.percentile(SAMPLES, 90) == pytest.approx(9.1)
    assert stats.percentile([4.0], 90) == 4.0


def test_summary_by_hand():
    s = stats.summarize(SAMPLES)
    # mean 5.5; sample variance = sum((x-5.5)^2)/9 = 82.5/9 = 9.1667; stdev 3.02765
    assert s.n == 10 and s.min == 1.0 and s.max == 10.0
    assert s.mean == pytest.approx(5.5)
    assert s.stdev == pytest.approx(math.sqrt(82.5 / 9))
    assert s.iqr == pytest.approx(7.75 - 3.25)
    assert s.cv == pytest.approx(math.sqrt(82.5 / 9) / 5.5)
    assert set(s.as_dict()) >= {"median", "mean", "p10", "p90", "iqr", "cv"}


def test_summary_is_order_independent_and_single_sample_has_zero_spread():
    assert stats.summarize(SAMPLES[::-1]) == stats.summarize(SAMPLES)
    one = stats.summarize([0.25])
    assert (one.median, one.stdev, one.iqr, one.cv) == (0.25, 0.0, 0.0, 0.0)


def test_throughput_uses_the_global_batch():
    assert stats.throughput(32, 0.016) == pytest.approx(2000.0)


@pytest.mark.parametrize("bad", [[], None])
def test_summary_refuses_no_samples(bad):
    with pytest.raises((ValueError, TypeError)):
        stats.summarize(bad)


def test_percentile_rejects_out_of_range_q():
    with pytest.raises(ValueError, match="q must be in"):
        stats.percentile(SAMPLES, 101)


def test_median_of_medians_by_hand():
    # process medians 2, 5, 3 -> their median is 3
    assert stats.median_of_medians([[1, 2, 3], [5, 5, 9], [3]]) == 3


def test_the_hierarchical_interval_of_the_median_carries_run_to_run_noise():
    """The interval a cell's median is shown with (CellResult.interval): reproducible, around
    the median of process medians, and much wider when the processes disagree."""
    steps = [0.010 + 0.0001 * i for i in range(50)]
    steady = [steps, steps, steps]
    drifting = [steps, [2 * x for x in steps], [0.5 * x for x in steps]]
    narrow = stats.hierarchical_bootstrap_median_ci(steady)
    assert narrow == stats.hierarchical_bootstrap_median_ci(steady)
    assert narrow[0] <= stats.median_of_medians(steady) <= narrow[1]
    wide = stats.hierarchical_bootstrap_median_ci(drifting)
    assert wide[1] - wide[0] > 3 * (narrow[1] - narrow[0])
