"""A user's project outside the checkout: examples/own_model copied to a temporary folder,
with modules of its own named as distbench's folders are (``bench.py`` or a ``bench/``
package, ``strategies.py``, a ``workloads/`` package) and ordinary tests of its own;
measured with ``pytest --benchmark-only`` and ``distbench run``, through real workers,
with distbench installed in editable mode and from a built wheel."""

import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from xml.etree import ElementTree

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "own_model")
pytestmark = pytest.mark.slow


def _env():
    # Nothing of the checkout on the path: distbench comes from its installation.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


# The project's own modules, named as distbench's source folders are: each says which it is,
# and the project's own test imports them, so that distbench shadowing them (or they
# shadowing distbench) fails the test.
OWN_MODULES = {
    "strategies.py": "WHICH = 'the project strategies'\n",
    "workloads/__init__.py": "WHICH = 'the project workloads'\n",
    "utils.py": "WHICH = 'the project utils'\n",
}
OWN_TEST = """
import bench, strategies, utils, workloads


def test_the_project_s_own_modules_are_its_own():
    assert bench.WHICH == 'the project bench'
    assert strategies.WHICH == 'the project strategies' and workloads.WHICH == 'the project workloads'
    assert utils.WHICH == 'the project utils'
"""


def make_project(where, bench_as_package=False):
    shutil.copytree(EXAMPLE, where, ignore=shutil.ignore_patterns("results", "__pycache__"))
    files = {**OWN_MODULES, ("bench/__init__.py" if bench_as_package else "bench.py"): "WHICH = 'the project bench'\n",
             "tests/test_own.py": OWN_TEST}
    for name, text in files.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_text(text)
    with open(where / "pyproject.toml", "a") as f:
        f.write('\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\npythonpath = ["."]\n')
    return where


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "somewhere" / "own_model")


def _runs(project):
    return sorted((project / "results").glob("*/*.json"))


# A conftest of the project's that reads each item's path relative to the root folder (as
# plugins that split or order tests by file do): the matrix's items, whose module is in
# the installed package, raised ValueError there.
RELATIVE_CONFTEST = """
import pathlib

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        item.path.relative_to(config.rootpath)


def pytest_runtest_setup(item):   # the project's hooks run for a cell as for any test
    with open(pathlib.Path(__file__).with_name("setup.log"), "a") as log:
        log.write(item.nodeid + "\\n")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):   # pytest's recipe: test results available in fixtures
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


@pytest.fixture(autouse=True)
def _reads_its_result(request):
    yield
    assert request.node.rep_call.outcome in ("passed", "failed", "skipped")
"""


def test_pytest_benchmark_only_measures_the_project_s_matrix(project):
    (project / "conftest.py").write_text(RELATIVE_CONFTEST)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--benchmark-only", "-q", "-rs", "-p", "no:cacheprovider", "--junitxml=j.xml",
         "-k", "default or one_gpu", "--distbench-strategy", "default", "--distbench-strategy", "virtual",
         "--distbench-strategy", "one_gpu", "--distbench-guard-seeds", "2", "--distbench-no-peak"],
        cwd=project, capture_output=True, text=True, timeout=600, env={**_env(), "DISTBENCH_SPAWN": "fork"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    out = result.stdout
    assert "tiny_sentiment-default-fit" in out and "tiny_sentiment-default-custom" in out
    assert "tiny_sentiment-virtual" not in out.split("distbench")[-1]   # -k selected the default cells
    # Below pytest-benchmark's own tables, the terminal fits 120 columns and holds no
    # TensorFlow start-up line.
    ours = out[out.index("= distbench ="):].splitlines()
    assert max(len(line) for line in ours) <= 120, max(ours, key=len)
    assert "default-custom" in out[out.index("= distbench ="):]
    # -rs: one short line per reason, named for distbench, not for matrix.py's installed path;
    # no "empty parameter set" skip for the overhead benchmark nobody asked for.
    assert any(line.startswith("SKIPPED [") and "] distbench: one_gpu: " in line for line in ours), ours[-8:]
    assert "empty parameter set" not in out
    # The project's conftest hooks ran for its cells (pytest found no conftest for their path, and
    # the recipe's fixture had errored at every cell's teardown: no rep_call).
    ran = (project / "setup.log").read_text().splitlines()
    assert "distbench-matrix.py::test_cell[tiny_sentiment-default-custom]" in ran, ran
    assert " error" not in out and "rep_call" not in out, out[-3000:]
    # JUnit keeps pytest's own skip text, the whole reason where it was raised (it read "distbench:None: ...").
    skips = re.findall(r"<skipped [^>]*>([^<]*)</skipped>", (project / "j.xml").read_text())
    assert skips and all(re.match(r".*matrix\.py:\d+: one_gpu: ", text) for text in skips), skips
    assert not [line for line in (out + result.stderr).splitlines() if line.startswith(("I0000", "W0000", "E0000"))]
    (path,) = _runs(project)
    run = json.loads(path.read_text())
    cells = {c: reps[0] if isinstance(reps, list) else reps for c, reps in run["distbench"]["unmeasured"].items()}
    measured = {b["param"]: b["extra_info"]["distbench"]["repeats"][0] for b in run["benchmarks"]}
    assert set(measured) >= {"tiny_sentiment-default-fit", "tiny_sentiment-default-custom",
                             "tiny_sentiment-default-fit-init1"}, (list(measured), list(cells))
    record = measured["tiny_sentiment-default-custom"]
    assert record["data"]["source"] == f"folder:{project / 'data'}" and record["data"]["layout"] == "split"
    assert record["data"]["train_examples"] == 48 and record["data"]["test_examples"] == 16
    assert record["config"]["plugins"] == [f"workload={project / 'model.py'}:TinySentiment@{project}"]
    assert record["config"]["epochs"] == 2 and record["config"]["global_batch"] == 8   # from pyproject.toml
    assert record["definition"]["workload"] and record["compute"]["flops_per_step"] > 0
    # pytest's count: the matrix's items among those collected, beside the project's own
    # test (it read "-1/2 tests collected (3 deselected)" when they were not counted).
    listed = subprocess.run([sys.executable, "-m", "pytest", "--benchmark-only", "--co", "-q", "-p", "no:cacheprovider"],
                            cwd=project, capture_output=True, text=True, timeout=300, env=_env())
    selected, collected, deselected = map(int, re.search(r"^(\d+)/(\d+) tests collected \((\d+) deselected\)",
                                                         listed.stdout, re.M).groups())
    assert selected > 0 and selected + deselected == collected, listed.stdout[-500:]
    # Naming a test file (or node id) names what to run: not the whole matrix as well.
    named = subprocess.run([sys.executable, "-m", "pytest", "--benchmark-only", "--co", "-q", "-p", "no:cacheprovider",
                            "tests/test_own.py"], cwd=project, capture_output=True, text=True, timeout=300, env=_env())
    assert "test_cell[" not in named.stdout and "no tests collected" in named.stdout, named.stdout[-500:]
    # One fork server for the whole run: pytest's per-test PYTEST_CURRENT_TEST is not part of
    # its key (it started a server, TensorFlow's import, for every cell).
    servers = {r["started"].get("server_pid") for r in measured.values()}
    assert len(servers) == 1 and None not in servers, servers


def test_a_cell_the_project_s_fixture_skips_is_missing_from_the_run_not_left_out(project):
    """A conftest fixture that skips a cell before distbench runs it: the summary and the
    stored run had no word of it (its plan counted it, its cells did not list it)."""
    (project / "conftest.py").write_text(
        "import pytest\n\n\n@pytest.fixture(autouse=True)\ndef _not_fit(request):\n"
        "    if request.node.name.endswith('-default-fit]'):\n        pytest.skip('the project skips fit today')\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "--benchmark-only", "-q", "-p", "no:cacheprovider", "-k",
                             "default", "--distbench-guard-seeds", "0", "--distbench-no-peak"], cwd=project,
                            capture_output=True, text=True, timeout=600, env=_env())
    out = " ".join(result.stdout.split())
    assert result.returncode == 0 and "1 passed, 1 skipped" in out, result.stdout[-3000:] + result.stderr[-2000:]
    assert "MISSING (1): it never reached distbench: pytest skipped it or failed its set-up first" in out, out[-2000:]
    (path,) = _runs(project)
    run = json.loads(path.read_text())["distbench"]
    assert "tiny_sentiment-default-fit" in run["unmeasured"] and not run["interrupted"], run["unmeasured"]


XFAIL_CONFTEST = """import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.name.startswith("test_cell["):
            item.add_marker(pytest.mark.xfail(reason="the project's flaky cells"))
"""
DIVERGES = """

def _optimizer(self):
    return distbench.keras_api().optimizers.SGD(learning_rate=1e30)


TinySentiment.optimizer = _optimizer
"""


def test_a_crashed_cell_fails_the_session_that_another_plugin_let_pass(project):
    """The project's conftest marks the cells xfail (a rerun plugin does the same to a cell
    that failed once); its model diverges: a cell whose process failed was pytest's "1 xfailed", exit 0, a green
    CI, while the stored run holds the failure (and `distbench run` exits 1)."""
    (project / "conftest.py").write_text(XFAIL_CONFTEST)
    with open(project / "model.py", "a") as model:
        model.write(DIVERGES)   # the worker refuses a run whose loss is not finite
    result = subprocess.run([sys.executable, "-m", "pytest", "--benchmark-only", "-q", "-p", "no:cacheprovider", "-k",
                             "default-custom", "--distbench-guard-seeds", "0", "--distbench-no-peak"], cwd=project,
                            capture_output=True, text=True, timeout=600, env=_env())
    out = " ".join(result.stdout.split())
    assert "1 xfailed" in out, result.stdout[-3000:] + result.stderr[-2000:]
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    (path,) = _runs(project)
    (failed,) = json.loads(path.read_text())["distbench"]["unmeasured"]["tiny_sentiment-default-custom"]
    assert failed["status"] == "error" and failed["reason"].startswith("Training diverged"), failed


def test_a_cell_s_node_id_as_pytest_prints_it_runs_that_cell(project):
    """pytest names a cell of the project's matrix ``distbench-matrix.py::test_cell[ID]`` (its
    module is in the installed package; it had named it ``::matrix.py::test_cell[ID]``), and
    refused that id as an argument: a failed cell could not be run again by its id."""
    def pytest_(*args):
        return subprocess.run([sys.executable, "-m", "pytest", "--benchmark-only", "-p", "no:cacheprovider",
                               "--distbench-guard-seeds", "0", "--distbench-no-peak", *args], cwd=project,
                              capture_output=True, text=True, timeout=600, env=_env())

    listed = pytest_("--co", "-q")
    (node_id,) = [line for line in listed.stdout.splitlines() if line.endswith("[tiny_sentiment-virtual-custom]")]
    assert node_id == "distbench-matrix.py::test_cell[tiny_sentiment-virtual-custom]", listed.stdout[-2000:]
    result = pytest_("-q", node_id, "tests/test_own.py",   # beside a file of the project's: its test is no benchmark
                     "--junitxml", "junit.xml", "-o", "junit_family=xunit1")
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
    (path,) = _runs(project)
    (stored,) = json.loads(path.read_text())["benchmarks"]
    assert stored["param"] == "tiny_sentiment-virtual-custom" and stored["fullname"] == node_id, stored["fullname"]
    # Where pytest says the cell is (item.location; JUnit's file): the node id's file, not the installed matrix.py.
    (case,) = [c.attrib for c in ElementTree.parse(project / "junit.xml").iter("testcase") if "[" in c.attrib["name"]]
    assert case["file"] == "distbench-matrix.py" and case["classname"] == "distbench-matrix", case
    # Without --benchmark-only nothing selects by it: a refusal that says what runs it, not a run of nothing.
    plain = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node_id], cwd=project,
                           capture_output=True, text=True, timeout=300, env=_env())
    assert plain.returncode == 4 and plain.stderr.strip() == (
        f'ERROR: {node_id}: a distbench cell runs with --benchmark-only: pytest --benchmark-only "{node_id}"'), \
        plain.stdout + plain.stderr
    every = pytest_("--co", "-q", "distbench-matrix.py::test_cell")   # the function's id: each of its cells
    assert every.returncode == 0 and every.stdout.count("distbench-matrix.py::test_cell[") == 4, every.stdout
    (project / "tests" / "sub").mkdir()   # from a sub-folder, as pytest takes a path; and the older form
    older = subprocess.run([sys.executable, "-m", "pytest", "--benchmark-only", "-p", "no:cacheprovider", "--co", "-q",
                            "--distbench-guard-seeds", "0", "../../distbench-matrix.py::test_cell", "::matrix.py::test_cell"],
                           cwd=project / "tests" / "sub", capture_output=True, text=True, timeout=300, env=_env())
    assert older.returncode == 0 and older.stdout.count("distbench-matrix.py::test_cell[") == 4, older.stdout
    wrong = pytest_("--co", "-q", "distbench-matrix.py::test_cell[tiny_sentiment-virtual-nosuch]")
    assert wrong.returncode == 4 and wrong.stderr.strip().startswith(
        "ERROR: distbench-matrix.py::test_cell[tiny_sentiment-virtual-nosuch]: no such cell in this run's matrix"), \
        wrong.stderr


# `python -m distbench` (its __main__), saying at the end whether the parent imported TensorFlow.
MAIN_SAYING_IF_TF = ("import sys; from distbench.cli.main import main; code = main(sys.argv[1:]); "
                     "print('TensorFlow in the parent:', 'tensorflow' in sys.modules); sys.exit(code)")


def test_the_cli_reads_the_same_matrix_and_refuses_a_wrong_folder(project):
    """The parent of a run keeps TensorFlow out of its own process (a worker lists the
    devices and TensorFlow's build: the stored machine is still described by them)."""
    import tensorflow as tf

    run = [sys.executable, "-c", MAIN_SAYING_IF_TF, "run", "--strategy", "default", "--loop", "custom",
           "--guard-seeds", "0", "--no-peak"]
    result = subprocess.run(run, cwd=project, capture_output=True, text=True, timeout=600, env=_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "[1/1] tiny_sentiment-default-custom: ok" in result.stdout and len(_runs(project)) == 1
    assert "TensorFlow in the parent: False" in result.stdout
    machine = json.loads(_runs(project)[0].read_text())["machine_info"]["distbench"]
    gpus = len(tf.config.list_physical_devices("GPU"))
    assert (machine["tensorflow"], machine["gpu_count"]) == (tf.__version__, gpus) == (tf.__version__, len(machine["gpus"]))
    assert machine["keras"] and machine["cuda_build"] == tf.sysconfig.get_build_info().get("cuda_version")
    (project / "bad" / "pos").mkdir(parents=True)
    result = subprocess.run(run + ["--data", "bad"], cwd=project, capture_output=True, text=True, timeout=600,
                            env=_env())
    assert result.returncode == 2 and "Data folder" in result.stderr and "[1/1]" not in result.stdout
    assert "train/ and test/, each with the same class sub-folders" in result.stderr
    assert len(_runs(project)) == 1    # refused before any worker started; nothing stored changed
    # A TextClassifier's model was not checked before a run: one that takes 50 tokens of the
    # texts' 100 ran and passed (test 1.000), a global batch beyond the training set failed
    # each cell and was saved. Both are refused once, in one line, nothing saved.
    model = (project / "model.py").read_text()
    (project / "model.py").write_text(model.replace("keras.Input(shape=(self.sequence_length,)",
                                                    "keras.Input(shape=(50,)"))
    result = subprocess.run(run, cwd=project, capture_output=True, text=True, timeout=600, env=_env())
    assert result.returncode == 2 and result.stderr == (
        "distbench: error: tiny_sentiment: the model takes (50,) per example; its texts are 100 tokens each "
        "(sequence_length 100): start it with keras.Input(shape=(100,)), or set sequence_length to what it "
        "takes.\n"), result.stdout[-2000:] + result.stderr[-2000:]
    (project / "model.py").write_text(model)
    result = subprocess.run(run + ["--global-batch", "10000"], cwd=project, capture_output=True, text=True,
                            timeout=600, env=_env())
    assert result.returncode == 2 and "fewer than one global batch of 10000" in result.stderr, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and "[1/1]" not in result.stdout and len(_runs(project)) == 1
    # An ab side that no selected cell reads (an A/A that passed), or that is no variable or
    # option: one line, exit 2, before any worker, with TensorFlow still out of the parent.
    stored = _runs(project)[0].read_bytes()
    for args, message in (
            (["--b", "--steps-per-execution 10", "--loop", "custom"], "Side B (--steps-per-execution 10): no cell of "
             "this selection reads --steps-per-execution (only the fit loop and loops of your own do)"),
            (["--b", "X=0 X=1"], "Side B (X=0 X=1): X is set twice; give each variable once."),
            (["--a", "x.y=1", "--b", "--prefetch 2"], "'x.y' is not an environment variable name")):
        result = subprocess.run([sys.executable, "-c", MAIN_SAYING_IF_TF, "ab", *args], cwd=project,
                                capture_output=True, text=True, timeout=300, env=_env())
        assert result.returncode == 2 and message in result.stderr, result.stdout[-2000:] + result.stderr[-2000:]
        assert result.stderr.count("\n") == 1 and "TensorFlow in the parent: False" in result.stdout
    assert _runs(project)[0].read_bytes() == stored and len(_runs(project)) == 1


def test_auto_data_is_resolved_by_a_worker_and_its_fallback_said_once(project, tmp_path):
    """``--data auto`` (the default) of a workload with a Keras dataset tries its loader:
    asked of a worker, so that the parent still imports no TensorFlow and the loader's
    ``Downloading data from ...`` stays out of the table; without the dataset here (no
    internet, an empty Keras folder), the fallback is said once, and the record says which
    data it was."""
    env = {**_env(), "DISTBENCH_CACHE": str(tmp_path / "cache"), "KERAS_HOME": str(tmp_path / "keras")}
    run = [sys.executable, "-c", MAIN_SAYING_IF_TF, "run", "--workload", "reuters_cnn", "--strategy", "default",
           "--loop", "custom", "--data", "auto", "--steps-per-epoch", "20", "--epochs", "1", "--guard-seeds", "0",
           "--no-peak"]   # --data: the project's matrix file names its folder
    result = subprocess.run(run, cwd=project, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "TensorFlow in the parent: False" in result.stdout
    assert "Downloading data from" not in result.stdout
    (path,) = _runs(project)
    (bench,) = json.loads(path.read_text())["benchmarks"]
    source = bench["extra_info"]["distbench"]["repeats"][0]["data"]["source"]
    fallbacks = result.stderr.count("reuters_cnn: the Keras dataset is not available here")
    assert (source, fallbacks) in (("keras", 0), ("synthetic", 1)), (source, result.stderr[-2000:])


def test_a_tf_keras_team_measures_fit_across_workers_from_its_project(project):
    """Unnamed, the Keras of a cross-process strategy is both: Keras 3's fit is skipped with
    its reason, tf-keras's fit runs on two local workers with the project's data folder."""
    run = [sys.executable, "-m", "distbench", "run", "--strategy", "multi_worker", "--loop", "fit",
           "--guard-seeds", "0", "--no-peak", "--timing-cost-pairs", "0"]
    result = subprocess.run(run, cwd=project, capture_output=True, text=True, timeout=600, env=_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "tiny_sentiment-multi_worker-fit: skipped: multi_worker: Keras 3 does not support fit" in result.stdout
    assert "tiny_sentiment-multi_worker-fit-tf_keras: ok" in result.stdout
    (path,) = _runs(project)
    run = json.loads(path.read_text())
    (record,) = [b["extra_info"]["distbench"]["repeats"][0] for b in run["benchmarks"]]
    assert record["keras"]["package"] == "tf-keras" and record["strategy"]["replicas"] == 2
    assert record["data"]["source"] == f"folder:{project / 'data'}" and record["started"]["cwd"] == str(project)


def test_tf_use_legacy_keras_in_the_shell_trains_with_tf_keras_and_the_option_still_wins(project):
    """TensorFlow's own advice for Keras 2, `TF_USE_LEGACY_KERAS=1 distbench run`, trained
    with Keras 3 and said nothing (each worker's variable is set from its cell's flavour)."""
    run = [sys.executable, "-m", "distbench", "run", "--strategy", "default", "--loop", "custom", "--guard-seeds",
           "0", "--no-peak", "--timing-cost-pairs", "0"]
    env = {**_env(), "TF_USE_LEGACY_KERAS": "1"}
    result = subprocess.run(run, cwd=project, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "tiny_sentiment-default-custom-tf_keras: ok" in result.stdout, result.stdout[-3000:]
    (path,) = _runs(project)
    (bench,) = json.loads(path.read_text())["benchmarks"]
    assert bench["extra_info"]["distbench"]["repeats"][0]["keras"]["package"] == "tf-keras"
    result = subprocess.run([*run, "--keras", "keras3", "--no-save"], cwd=project, capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0 and "tiny_sentiment-default-custom: ok" in result.stdout, result.stdout[-3000:]


@pytest.mark.parametrize("bench_as_package", [False, True], ids=["bench.py", "bench-package"])
def test_the_project_s_own_tests_run_beside_the_plugin(tmp_path, bench_as_package):
    """pytest loads distbench's plugin in every run of the environment; a project's own
    ``bench`` (module or package), ``strategies``, ``workloads`` and ``utils`` stay its own."""
    where = make_project(tmp_path / "own", bench_as_package)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=where,
                            capture_output=True, text=True, timeout=300, env=_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
    if bench_as_package:
        return
    # The project's own benchmarks, compared and saved by pytest-benchmark: distbench's machine
    # description read TensorFlow's devices into the pytest process (before the tests, for
    # --benchmark-compare), 8-10 s a run, and went into the project's own JSON.
    (where / "tests" / "test_speed.py").write_text(
        "import sys\n\n\ndef test_tokenising_is_fast(benchmark):\n    benchmark(str.split, 'a b c ' * 100)\n"
        "    assert 'tensorflow' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-compare",
                             "--benchmark-json=own.json"], cwd=where, capture_output=True, text=True, timeout=300,
                            env=_env())
    assert result.returncode == 0 and "2 passed" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
    assert "distbench" not in json.loads((where / "own.json").read_text())["machine_info"]


def _wheel(tmp_path):
    """distbench built as a wheel from this checkout (no network: the build backend is installed)."""
    out = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    ROOT], check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("distbench-*.whl")
    return wheel


def test_from_a_wheel_the_project_s_tests_and_a_run_work(tmp_path):
    wheel = _wheel(tmp_path)
    top = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in top if not t.endswith(".dist-info")} == {"distbench"}, top   # one import package
    where = make_project(tmp_path / "own")
    env_dir = where / ".venv"   # inside the project, as many keep it
    venv.create(env_dir, system_site_packages=True, with_pip=False)   # sees the installed TensorFlow
    python = str(env_dir / "bin" / "python")
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    found = subprocess.run([python, "-c", "import distbench.worker; print(distbench.worker.__file__)"], cwd=where,
                           capture_output=True, text=True, timeout=120, env=_env())
    assert str(env_dir) in found.stdout, found.stdout + found.stderr   # the wheel's, not the checkout's
    result = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=where,
                            capture_output=True, text=True, timeout=300, env=_env())
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
    # A cell's node id is the same as from any other installation (it named the package's
    # file under .venv/lib/.../site-packages, which lies inside the project).
    listed = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-only", "--co"],
                            cwd=where, capture_output=True, text=True, timeout=300, env=_env())
    assert "distbench-matrix.py::test_cell[tiny_sentiment-default-custom]" in listed.stdout.splitlines(), \
        listed.stdout[-2000:] + listed.stderr[-2000:]
    # Fresh interpreters here; the wheel's fork server runs check --against's pairs below.
    result = subprocess.run(
        [str(env_dir / "bin" / "distbench"), "run", "--strategy", "default", "--loop", "custom", "--guard-seeds",
         "0", "--no-peak"], cwd=where, capture_output=True, text=True, timeout=600,
        env={**_env(), "DISTBENCH_SPAWN": "exec"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "[1/1] tiny_sentiment-default-custom: ok" in result.stdout
    # The report's page template ships in the wheel.
    result = subprocess.run([str(env_dir / "bin" / "distbench"), "report", "--out", "rep"], cwd=where,
                            capture_output=True, text=True, timeout=300, env=_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    page = (where / "rep" / "report.html").read_text()
    assert "tiny_sentiment-default-custom" in page
    # The guard was off: the page says so, and not that no cell is outside a band it never had.
    for text in (page, (where / "rep" / "report.md").read_text()):
        assert "The accuracy guard was off in this run (guard seeds 0" in text and "No cell is outside" not in text
    # No distbench checkout anywhere: check --against takes the project's own history.
    git = {"GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@example.com", "GIT_COMMITTER_NAME": "u",
           "GIT_COMMITTER_EMAIL": "u@example.com"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "model"]):
        subprocess.run(["git", *args], cwd=where, check=True, capture_output=True, env={**_env(), **git})
    model = where / "model.py"
    model.write_text(model.read_text().replace('layers.Dense(16, activation="relu"),',
                                               'layers.Dense(1024, activation="relu"), layers.Dense(1024, '
                                               'activation="relu"), layers.Dense(16, activation="relu"),'))
    subprocess.run(["git", "commit", "-q", "-am", "wider"], cwd=where, check=True, capture_output=True,
                   env={**_env(), **git})
    result = subprocess.run(
        [str(env_dir / "bin" / "distbench"), "check", "--against", "HEAD~1", "--strategy", "default", "--loop",
         "custom", "--no-save"], cwd=where, capture_output=True, text=True, timeout=600, env=_env())
    assert result.returncode == 1 and "SLOWER: tiny_sentiment-default-custom" in result.stdout, (
        result.stdout[-3000:] + result.stderr[-2000:])


def _git(where, *args):
    return subprocess.run(["git", *args], cwd=where, check=True, capture_output=True, text=True,
                          env={**_env(), "GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@x", "GIT_COMMITTER_NAME": "u",
                               "GIT_COMMITTER_EMAIL": "u@x"}).stdout.strip()


def test_a_run_records_the_project_s_commit_wherever_it_is_started(project, tmp_path):
    """The stored commit is the project's: it was read in the working directory, so a
    `pytest /path/to/project/tests` typed in another repository recorded that one's commit
    and name, and a run typed in a sub-folder named the project after the sub-folder."""
    for repo, message in ((project, "The project"), (tmp_path / "elsewhere", "Another repository")):
        repo.mkdir(exist_ok=True)
        _git(repo, "init", "-q")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "--allow-empty", "-m", message)
    common = ["--distbench-strategy", "default", "--distbench-loop", "custom", "--distbench-guard-seeds", "0",
              "--distbench-no-peak"]
    result = subprocess.run([sys.executable, "-m", "pytest", "--benchmark-only", "-q", "-p", "no:cacheprovider",
                             str(project / "tests"), *common], cwd=tmp_path / "elsewhere", capture_output=True,
                            text=True, timeout=600, env=_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    result = subprocess.run([sys.executable, "-m", "distbench", "run", *(a.replace("distbench-", "") for a in common)],
                            cwd=project / "tests", capture_output=True, text=True, timeout=600, env=_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    head = _git(project, "rev-parse", "HEAD")
    for path in _runs(project):
        info = json.loads(path.read_text())["commit_info"]
        assert (info["id"], info["project"], info["dirty"]) == (head, "own_model", False), (path.name, info)
