import pytest

from bench.pytest_plugin import record_samples


def test_benchmark_statistics_are_the_measured_samples(benchmark, request):
    if request.config.getoption("benchmark_only"):
        pytest.skip("a test, not a benchmark")
    samples = [0.010, 0.012, 0.011, 0.030]
    record_samples(benchmark, samples)
    stats = benchmark.stats.stats
    assert stats.data == pytest.approx(samples)
    assert stats.median == pytest.approx(0.0115)
    assert stats.rounds == 4
