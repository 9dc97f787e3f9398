"""The benchmark matrix as pytest-benchmark benchmarks: one per cell, and the overhead's.

Not a test module of this repository: the pytest plugin (:mod:`distbench.pytest_plugin.plugin`)
collects it into any project that runs ``pytest --benchmark-only``, this one included,
with the cells of that project's matrix (``[tool.distbench]``, the ``--distbench-*``
options). Every ``distbench run`` option is a ``--distbench-NAME`` option here.
"""

import pytest
from distbench.core.errors import UserError
from distbench.pytest_plugin.samples import record_samples
from distbench.render.run_table import error_line
from distbench.session import overhead


def test_cell(benchmark, distbench_cell, distbench_session):
    try:
        repeats = distbench_session.run_cell(distbench_cell)
    except UserError as exc:   # a workload refused before any timing: once for the run, not once per cell
        _failed(benchmark)
        pytest.exit(error_line(exc), returncode=pytest.ExitCode.USAGE_ERROR)
    except KeyboardInterrupt:
        _failed(benchmark)   # no "fixture was not used" warning beside the interrupted run's lines
        raise
    measured = [r for r in repeats if r["status"] == "ok"]
    failed = [r for r in repeats if r["status"] == "error"]
    if failed:   # first: a process that skipped does not hide another's crash
        _failed(benchmark)
        pytest.fail(f"{distbench_cell.id}: {failed[0]['reason']}\n{_detail(failed[0])}", pytrace=False)
    skipped = [r for r in repeats if r["status"] == "skipped"]
    if not measured and skipped:
        pytest.skip(skipped[0]["reason"])
    if skipped:   # some of its processes measured it, and another could not: not the cell asked for
        _failed(benchmark)
        pytest.fail(f"{distbench_cell.id}: {len(skipped)} of {len(repeats)} processes skipped it, the others "
                    f"measured it: {skipped[0]['reason']}", pytrace=False)
    benchmark.group = distbench_cell.workload
    benchmark.extra_info["distbench"] = measured[0] if len(measured) == 1 else {"repeats": measured}
    record_samples(benchmark, [s for r in measured for s in r["steps"]["samples"]])


def test_harness_overhead(benchmark, distbench_overhead_cell, distbench_session):
    """The harness's cell against a bare TensorFlow loop (``--distbench-overhead``); the 3%
    target is reported, not asserted: a benchmark is not a timed test."""
    record = distbench_session.run_overhead(distbench_overhead_cell)
    distbench_session.overhead.append(record)
    if record["status"] == "skipped":
        pytest.skip(record["reason"])
    if record["status"] != "ok":
        _failed(benchmark)
        pytest.fail(f"{record['cell']}: {record.get('reason')}\n{_detail(record)}", pytrace=False)
    benchmark.group = "harness overhead"
    benchmark.extra_info["distbench_overhead"] = record["overhead"]
    # pytest-benchmark's statistics: the bare loop's median step in each pair; the harness's
    # are beside them in extra_info.
    record_samples(benchmark, record["overhead"]["bare"])
    if overhead.failed(record):   # the pairs stand; the process that times fit's callback failed
        pytest.fail(f"{record['cell']}: fit's timing callback: {record['overhead']['fit']['error']}", pytrace=False)


def _detail(record: dict) -> str:
    """What a failed process left beside its reason: the exception's traceback in the worker
    (where the user's code raised it), and the end of its output."""
    return "\n".join(part for part in (_last_lines(record.get("traceback", ""), 2500),
                                       _last_lines(record.get("output_tail", ""), 1500)) if part)


def _last_lines(text: str, limit: int) -> str:
    """The whole lines at the end of ``text`` within ``limit`` characters, saying what was
    left out (it had been cut mid-word); a last line longer than that keeps its end."""
    if len(text) <= limit:
        return text
    kept = text[-limit:]
    if "\n" not in kept:
        return f"[the start of this line left out]\n{kept}"
    kept = kept[kept.index("\n") + 1:]
    return f"[{text.count(chr(10)) - kept.count(chr(10))} earlier lines left out]\n{kept}"


def _failed(benchmark) -> None:
    """A cell whose processes failed has no timings: pytest-benchmark leaves it out of its
    tables (``has_error``) and does not warn that its fixture "was not used at all" (it warns
    when its private ``_mode`` is unset, the one way to tell it the fixture was used)."""
    benchmark.has_error = True
    benchmark._mode = "distbench: the cell failed"
