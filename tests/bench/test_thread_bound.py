"""TensorFlow thread counts past what this machine can use are refused before any worker
starts, from every front end: ``--inter-op-threads 99999`` hung a worker for 5.5 minutes
until TensorFlow aborted creating its threads."""

import os
import subprocess
import sys

import pytest
from distbench.cli.main import main
from distbench.core import cpus
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.launchers import process
from distbench.session import matrix_file


def _bound(flag: str, received: int) -> str:
    what = {"--inter-op-threads": "Inter-op threads", "--intra-op-threads": "Intra-op threads"}[flag]
    return (f"{what} ({flag}) must be at most {cpus.max_threads()} ({cpus.THREADS_PER_CPU} per usable CPU, "
            f"{cpus.usable_cpus()} here: more only wait for a CPU, and far more make TensorFlow abort creating them); "
            f"received {received}.")


@pytest.fixture
def no_worker(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a worker started before the thread count was checked")

    monkeypatch.setattr(process, "spawn", refuse)


def test_the_bound_is_64_threads_per_usable_cpu_of_this_machine(monkeypatch):
    most = cpus.THREADS_PER_CPU * cpus.usable_cpus()
    assert cpus.max_threads() == most == 64 * cpus.usable_cpus()
    CellSpec("reuters_cnn", "default", "fit", intra_op_threads=most, inter_op_threads=most).validate()
    for field in ("intra_op_threads", "inter_op_threads"):
        with pytest.raises(UserError, match=rf"must be at most {most} \(64 per usable CPU"):
            CellSpec("reuters_cnn", "default", "fit", **{field: most + 1}).validate()
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 3)   # a machine of 3 CPUs takes 192
    CellSpec("reuters_cnn", "default", "fit", inter_op_threads=192).validate()
    with pytest.raises(UserError, match=r"must be at most 192 \(64 per usable CPU, 3 here"):
        CellSpec("reuters_cnn", "default", "fit", inter_op_threads=193).validate()


@pytest.mark.parametrize("flag", ["--inter-op-threads", "--intra-op-threads"])
def test_run_and_a_side_of_ab_refuse_an_absurd_thread_count_in_one_line(capsys, tmp_path, no_worker, flag):
    cell = ["--workload", "reuters_cnn", "--data", "synthetic", "--strategy", "default", "--loop", "fit",
            "--no-peak", "--results", str(tmp_path / "results")]
    assert main(["run", *cell, flag, "99999"]) == 2
    assert capsys.readouterr().err == f"distbench: error: {_bound(flag, 99999)}\n"
    assert main(["ab", *cell, "--b", f"{flag} 99999"]) == 2
    assert capsys.readouterr().err == f"distbench: error: Side B ({flag} 99999): {_bound(flag, 99999)}\n"
    assert not os.path.exists(tmp_path / "results") or not os.listdir(tmp_path / "results")


def test_a_matrix_file_s_absurd_thread_count_is_refused_with_its_file(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.distbench]\ninter_op_threads = 99999\n")
    with pytest.raises(UserError) as refused:
        matrix_file.read(tmp_path / "pyproject.toml")
    assert str(refused.value) == f"{tmp_path / 'pyproject.toml'}: {_bound('--inter-op-threads', 99999)}"


def _pytest_in(project, *args):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *args],
                          cwd=project, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize("benchmark_only", [True, False])
def test_pytest_s_front_end_refuses_it_as_its_usage_error(tmp_path, benchmark_only):
    """``--distbench-inter-op-threads 99999``: pytest's one-line usage error (exit 4), with
    the matrix about to run and in a plain test run alike."""
    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\nworkloads = ["reuters_cnn"]\nstrategies = ["default"]\n'
                                             'loops = ["fit"]\ndata = "synthetic"\nguard_seeds = 0\n')
    (tmp_path / "test_own.py").write_text("def test_own():\n    assert True\n")
    result = _pytest_in(tmp_path, *(["--benchmark-only"] if benchmark_only else []),
                        "--distbench-inter-op-threads", "99999", "--distbench-no-peak", "--distbench-no-save")
    assert result.returncode == 4, (result.stdout[-2000:], result.stderr[-2000:])
    # The flag as typed here: --distbench-inter-op-threads.
    assert result.stderr.strip() == f"ERROR: {_bound('--inter-op-threads', 99999)}".replace(
        "(--inter-op-threads)", "(--distbench-inter-op-threads)")
