"""The harness-overhead benchmark: the harness's own measurement of a cell against a bare
TensorFlow loop of the same model, data and loop, interleaved step by step in one process
(``bench.overhead``). Runs with ``pytest --benchmark-only --distbench-overhead``; the ratio
is printed in the distbench summary and stored with the run. The 3% target is reported,
not asserted: a benchmark is not a timed test.
"""

import pytest

from bench.pytest_plugin import record_samples


def test_harness_overhead(benchmark, distbench_overhead_cell, distbench_session):
    record = distbench_session.run_overhead(distbench_overhead_cell)
    distbench_session.overhead.append(record)
    if record["status"] != "ok":
        pytest.fail(f"{record['cell']}: {record.get('reason')}\n{record.get('output_tail', '')[-1500:]}", pytrace=False)
    benchmark.group = "harness overhead"
    benchmark.extra_info["distbench_overhead"] = record["overhead"]
    # pytest-benchmark's statistics: the bare loop's steps; the harness's are beside them.
    record_samples(benchmark, [s for r in record["overhead"]["bare"]["samples"] for s in r])
