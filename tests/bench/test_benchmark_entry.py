"""`pytest --benchmark-only` end to end on one small cell: measured, tabled, saved."""

import os
import subprocess
import sys

import pytest

from bench.storage import Storage, load

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.slow


def test_benchmark_only_measures_tables_and_saves_the_cell(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--benchmark-only", "benchmarks/test_matrix.py",
         "-k", "matmul-default or matmul-one_gpu", "--distbench-matmul-shape", "64,16,64",
         "--distbench-results", str(tmp_path), "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:]
    assert "1 passed" in out and "distbench" in out and "GFLOP/s" in out
    (path,) = Storage(tmp_path).runs()
    assert f"Saved {path}" in out
    run = load(path)
    bench = {b["param"]: b for b in run.data["benchmarks"]}
    record = bench["matmul-default"]["extra_info"]["distbench"]["repeats"][0]
    assert bench["matmul-default"]["stats"]["data"] == record["steps"]["samples"]
    assert "tensorflow" in run.machine_info["distbench"]
    if not run.machine_info["distbench"]["gpus"]:
        assert "matmul-one_gpu" not in bench   # pytest-benchmark stores no skipped benchmark
        assert run.cells()["matmul-one_gpu"][0]["status"] == "skipped"


def _collected(*options):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--benchmark-only", "benchmarks", "--collect-only", "-q", *options],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout.split()


def test_the_suite_collects_the_guard_seeds_and_the_overhead_benchmark_when_asked():
    ids = _collected()
    for cell in ("reuters_cnn-default-fit-init1", "reuters_cnn-default-fit-init2", "multibranch-default-fit-init2"):
        assert f"benchmarks/test_matrix.py::test_cell[{cell}]" in ids
    assert not any("test_harness_overhead[" in i and "-custom]" in i for i in ids)   # opt-in: --distbench-overhead
    ids = _collected("--distbench-overhead", "--distbench-workload", "reuters_cnn", "--distbench-guard-seeds", "0")
    assert "benchmarks/test_overhead.py::test_harness_overhead[reuters_cnn-default-custom]" in ids
    assert not any("init1" in i or "multibranch" in i for i in ids)
