"""examples/own_model, copied outside the checkout, measured with `pytest --benchmark-only`
and `python -m bench run`, as a user's own project would be."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "own_model")
pytestmark = pytest.mark.slow


def _env():
    # Nothing of the checkout on the path: distbench comes from its installation.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


@pytest.fixture
def project(tmp_path):
    where = tmp_path / "somewhere" / "own_model"
    shutil.copytree(EXAMPLE, where, ignore=shutil.ignore_patterns("results", "__pycache__"))
    return where


def _runs(project):
    return sorted((project / "results").glob("*/*.json"))


def test_pytest_benchmark_only_measures_the_project_s_matrix(project):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--benchmark-only", "-q", "-p", "no:cacheprovider",
         "-k", "default", "--distbench-guard-seeds", "2", "--distbench-no-peak"],
        cwd=project, capture_output=True, text=True, timeout=600, env=_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    out = result.stdout
    assert "tiny_sentiment-default-fit" in out and "tiny_sentiment-default-custom" in out
    assert "tiny_sentiment-virtual" not in out.split("distbench")[-1]   # -k selected the default cells
    (path,) = _runs(project)
    run = json.loads(path.read_text())
    cells = {c: reps[0] if isinstance(reps, list) else reps for c, reps in run["distbench"]["unmeasured"].items()}
    measured = {b["param"]: b["extra_info"]["distbench"]["repeats"][0] for b in run["benchmarks"]}
    assert set(measured) >= {"tiny_sentiment-default-fit", "tiny_sentiment-default-custom",
                             "tiny_sentiment-default-fit-init1"}, (list(measured), list(cells))
    record = measured["tiny_sentiment-default-custom"]
    assert record["data"]["source"] == f"folder:{project / 'data'}" and record["data"]["layout"] == "split"
    assert record["data"]["train_examples"] == 48 and record["data"]["test_examples"] == 16
    assert record["config"]["plugins"] == [f"workload={project / 'model.py'}:TinySentiment"]
    assert record["config"]["epochs"] == 2 and record["config"]["global_batch"] == 8   # from pyproject.toml
    assert record["definition"]["workload"] and record["compute"]["flops_per_step"] > 0


def test_the_cli_reads_the_same_matrix_and_refuses_a_wrong_folder(project):
    run = [sys.executable, "-m", "bench", "run", "--strategy", "default", "--loop", "custom", "--guard-seeds", "0",
           "--no-peak"]
    result = subprocess.run(run, cwd=project, capture_output=True, text=True, timeout=600, env=_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "[1/1] tiny_sentiment-default-custom: ok" in result.stdout and len(_runs(project)) == 1
    (project / "bad" / "pos").mkdir(parents=True)
    result = subprocess.run(run + ["--data", "bad"], cwd=project, capture_output=True, text=True, timeout=600,
                            env=_env())
    assert result.returncode == 2 and "Data folder" in result.stderr and "[1/1]" not in result.stdout
    assert "train/ and test/, each with the same class sub-folders" in result.stderr
    assert len(_runs(project)) == 1    # refused before any worker started; nothing stored changed
