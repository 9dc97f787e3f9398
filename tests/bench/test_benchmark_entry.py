"""`pytest --benchmark-only` end to end on one small cell: measured, tabled, saved."""

import os
import subprocess
import sys

import pytest
from distbench.storage.files import Storage, load

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.slow


def test_benchmark_only_measures_tables_and_saves_the_cell(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--benchmark-only", "-p", "no:cacheprovider",
         "-k", "matmul-default or matmul-one_gpu", "--distbench-no-peak", "--distbench-matmul-shape", "64,16,64",
         # "=": pytest finds its rootdir before plugins' options are known, and would take a
         # separate existing folder for a test path.
         f"--distbench-results={tmp_path}", "-q"],
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
        # The matrix's module only: the checkout's own tests, and their TensorFlow, need not load.
        [sys.executable, "-m", "pytest", "--benchmark-only", "--collect-only", "-q", "-p", "no:cacheprovider", *options,
         "bench/pytest_plugin/matrix.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    return [i for i in result.stdout.split() if i.startswith("bench/pytest_plugin/matrix.py::")]   # the matrix, not the tests


def test_the_suite_collects_the_guard_seeds_and_the_overhead_benchmark_when_asked():
    ids = _collected()
    for cell in ("reuters_cnn-default-fit-init1", "reuters_cnn-default-fit-init2", "multibranch-default-fit-init2"):
        assert f"bench/pytest_plugin/matrix.py::test_cell[{cell}]" in ids
    assert not any("matrix.py::test_harness_overhead[" in i and "-custom]" in i for i in ids)   # opt-in: --distbench-overhead
    ids = _collected("--distbench-overhead", "--distbench-workload", "reuters_cnn", "--distbench-guard-seeds", "0")
    assert "bench/pytest_plugin/matrix.py::test_harness_overhead[reuters_cnn-default-custom]" in ids
    assert not any("init1" in i or "multibranch" in i for i in ids)


@pytest.mark.parametrize("flag", ["--benchmark-compare=0001", "--benchmark-compare-fail=mean:5%", "--benchmark-autosave"])
def test_pytest_benchmark_storage_flags_are_refused_with_one_line(flag):
    result = subprocess.run([sys.executable, "-m", "pytest", "--benchmark-only", "-q", "-p", "no:cacheprovider", flag,
                             "-k", "matmul-default"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]   # pytest's usage error
    err = result.stderr
    assert "distbench stores its runs itself" in err and "distbench check --baseline N" in err
    assert 'the project\'s own benchmarks alone keep them: -m "not distbench_cell"' in err   # what lets them through
    assert "INTERNALERROR" not in result.stdout + err and "Traceback" not in err
