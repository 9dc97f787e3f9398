"""The benchmark matrix: one pytest-benchmark benchmark per cell.

Run with ``pytest --benchmark-only`` (plain ``pytest`` skips these). Options:
``--distbench-profile full`` for the notes' 10-epoch runs, ``--distbench-data`` to pick
the data, ``--distbench-deadline`` for the per-cell kill deadline.
"""

import pytest

from bench.pytest_plugin import record_samples


def test_cell(benchmark, distbench_cell, distbench_suite, distbench_records):
    record = distbench_suite.run(distbench_cell)
    distbench_records.append(record)
    if record["status"] == "skipped":
        pytest.skip(record["reason"])
    if record["status"] == "error":
        pytest.fail(f"{distbench_cell.id}: {record['reason']}\n{record.get('output_tail', '')[-1500:]}", pytrace=False)
    benchmark.group = distbench_cell.workload
    benchmark.extra_info["distbench"] = record
    record_samples(benchmark, record["steps"]["samples"])
