"""The benchmark matrix: one pytest-benchmark benchmark per cell.

Run with ``pytest --benchmark-only`` (plain ``pytest`` skips these). Every
``python -m bench run`` option is here as ``--distbench-NAME`` (``--distbench-profile
full``, ``--distbench-repeats 3``, ``--distbench-data synthetic`` ...): one option table.
"""

import pytest

from bench.pytest_plugin import record_samples


def test_cell(benchmark, distbench_cell, distbench_session):
    repeats = distbench_session.run_cell(distbench_cell)
    measured = [r for r in repeats if r["status"] == "ok"]
    if not measured and repeats[0]["status"] == "skipped":
        pytest.skip(repeats[0]["reason"])
    failed = [r for r in repeats if r["status"] == "error"]
    if failed:
        pytest.fail(f"{distbench_cell.id}: {failed[0]['reason']}\n{failed[0].get('output_tail', '')[-1500:]}",
                    pytrace=False)
    benchmark.group = distbench_cell.workload
    benchmark.extra_info["distbench"] = measured[0] if len(measured) == 1 else {"repeats": measured}
    record_samples(benchmark, [s for r in measured for s in r["steps"]["samples"]])
