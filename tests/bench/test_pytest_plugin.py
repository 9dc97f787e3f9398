import json
import os
import subprocess
import sys

import pytest

STATISTICS_TEST = """
from distbench.pytest_plugin.samples import record_samples


def test_samples(benchmark):
    record_samples(benchmark, [0.010, 0.012, 0.011, 0.030])
"""


def test_benchmark_statistics_are_the_measured_samples(tmp_path):
    """In a pytest of its own: this suite runs under xdist, where pytest-benchmark times nothing."""
    (tmp_path / "test_samples.py").write_text(STATISTICS_TEST)
    out = tmp_path / "out.json"
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                             f"--benchmark-json={out}", "test_samples.py"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    (bench,) = json.loads(out.read_text())["benchmarks"]
    stats = bench["stats"]
    assert stats["median"] == pytest.approx(0.0115) and stats["rounds"] == 4
    assert stats["min"] == pytest.approx(0.010) and stats["max"] == pytest.approx(0.030)


def test_pytest_benchmark_s_machine_comparison_uses_distbench_s_fingerprint():
    from distbench.pytest_plugin.plugin import pytest_benchmark_compare_machine_info

    class Logger:
        def __init__(self):
            self.lines = []

        def warning(self, text):
            self.lines.append(text)

    class Session:
        logger = Logger()

    info = {"distbench": {"cpu_model": "X", "cpu_count": 2, "tensorflow": "2.21.0", "env": {}}, "cpu": {"hz": 1}}
    drifted = {"distbench": {**info["distbench"]}, "cpu": {"hz": 2}}   # a clock: not a difference
    pytest_benchmark_compare_machine_info(None, Session, info, {"machine_info": drifted, "path": "0001"})
    assert Session.logger.lines == []
    other = {"distbench": {**info["distbench"], "tensorflow": "2.20.0"}}
    pytest_benchmark_compare_machine_info(None, Session, info, {"machine_info": other, "path": "0001"})
    (line,) = Session.logger.lines
    assert "differs from 0001" in line and "tensorflow: 2.20.0 -> 2.21.0" in line


def test_an_ordinary_pytest_run_loads_only_the_plugin_and_its_option_table():
    """The plugin loads into every pytest run of the environment; without a matrix file it
    adds its options and nothing else: no numpy, no workloads, no TensorFlow (a fresh
    interpreter, as pytest loads it: the module, then pytest_addoption)."""
    code = ("import sys\n"
            "from distbench.pytest_plugin import plugin\n"
            "class Parser:\n"
            "    def getgroup(self, name): return self\n"
            "    def addoption(self, *names, **settings): self.added = True\n"
            "parser = Parser()\n"
            "plugin.pytest_addoption(parser)\n"
            "assert parser.added\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'tensorflow', 'keras'))[:3])\n"
            "print(sorted(m for m in sys.modules if m.startswith('distbench.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    heavy, loaded = out.splitlines()
    assert heavy == "[]", out
    assert not any(m.startswith(("distbench.workloads", "distbench.strategies", "distbench.storage")) for m in eval(loaded))
    assert "distbench.session.options" in loaded


def _pytest_in(project, *args):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *args],
                          cwd=project, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize("bad, message", [
    (["--distbench-strategy", "nope"], "ERROR: Unknown strategy 'nope'. Known: default, "),
    (["--distbench-epochs", "0"], "ERROR: Epochs (--distbench-epochs) must be an integer >= 1; received 0."),
    ([], "ERROR: /"),   # the matrix file's own wrong-typed value, named with its file
    # Before any cell, not at the end: it ran the whole matrix, then lost every record in a traceback.
    (["--distbench-results", "test_own.py"], "ERROR: Cannot write results under '/"),
])
def test_bad_input_to_the_benchmarks_is_pytest_s_one_line_usage_error(tmp_path, bad, message):
    """Not an INTERNALERROR traceback: one line, pytest's usage exit status (4); the
    project's ordinary tests still run."""
    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\nstrategies = ["default"]\n'
                                             + ('epochs = "two"\n' if not bad else ""))
    (tmp_path / "test_own.py").write_text("def test_own():\n    assert True\n")
    result = _pytest_in(tmp_path, "--benchmark-only", *bad)
    assert "Pass --distbench-results DIR or --distbench-no-save." in result.stderr or "--distbench-results" not in bad
    assert result.returncode == 4 and "INTERNALERROR" not in result.stdout + result.stderr, result.stderr[-2000:]
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        next(line for line in result.stderr.splitlines() if line.startswith(message))]
    assert _pytest_in(tmp_path).returncode == 0


def test_a_matrix_file_s_reference_that_does_not_load_is_refused_naming_the_file(tmp_path):
    """As `distbench run` names it; the line named the module only."""
    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\nworkloads = ["models.py:Nope"]\n')
    (tmp_path / "models.py").write_text("class Small:\n    pass\n")
    result = _pytest_in(tmp_path, "--benchmark-only")
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.strip() == (f"ERROR: {tmp_path / 'pyproject.toml'}: {tmp_path / 'models.py'} has no "
                                     "attribute 'Nope' (the classes it defines: Small)."), result.stderr[-2000:]


def test_the_project_s_tests_run_with_pytest_benchmark_turned_off(tmp_path):
    """`-p no:benchmark`: distbench's hooks of pytest-benchmark's were unknown to pluggy, an
    INTERNALERROR before any test, in every project of the environment."""
    (tmp_path / "test_own.py").write_text("def test_own():\n    assert True\n")
    for matrix in ("", '[tool.distbench]\nstrategies = ["default"]\n'):
        (tmp_path / "pyproject.toml").write_text(matrix)
        result = _pytest_in(tmp_path, "-p", "no:benchmark")
        assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]


def test_the_project_s_own_benchmarks_see_its_environment_unchanged(tmp_path):
    """`--benchmark-only` set TF_CPP_MIN_LOG_LEVEL=2 in the pytest process, for the
    project's own benchmarks too (its workers get theirs at their start)."""
    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\nworkloads = ["matmul"]\nstrategies = ["default"]\n'
                                             'no_peak = true\nmatmul_repeats = 2\nno_save = true\n')
    (tmp_path / "test_own.py").write_text("import os\n\n\ndef test_own(benchmark):\n    benchmark(sum, [1])\n"
                                          "    assert 'TF_CPP_MIN_LOG_LEVEL' not in os.environ\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                             "--benchmark-only"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0 and "2 passed" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]


def test_with_several_processes_a_cell_the_two_tables_say_whose_median_is_which(tmp_path):
    """`--distbench-repeats 2`: pytest-benchmark's median (every process's steps pooled) and
    distbench's (over the processes) differed, and neither table said why."""
    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\nworkloads = ["matmul"]\nstrategies = ["default"]\n'
                                             'no_peak = true\nmatmul_repeats = 2\nno_save = true\n')
    said = "pytest-benchmark's table pools the steps of a cell's processes; distbench's median and interval are over"
    for repeats in ("1", "2"):
        result = _pytest_in(tmp_path, "--benchmark-only", "--distbench-repeats", repeats)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert (said in " ".join(result.stdout.split())) == (repeats == "2"), result.stdout[-3000:]


def test_distbench_values_with_benchmark_only_and_no_matrix_file_are_refused(tmp_path):
    """Nothing reads them without a matrix file: `--benchmark-only --distbench-repeats 0`
    (or a workload asked for) ran the project's own benchmarks and said nothing."""
    (tmp_path / "test_own.py").write_text("def test_own(benchmark):\n    benchmark(sum, [1, 2])\n")
    result = _pytest_in(tmp_path, "--benchmark-only", "--distbench-workload", "reuters_cnn", "--distbench-repeats", "0")
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.strip().startswith("ERROR: --distbench-workload, --distbench-repeats given, but no matrix "
                                            "file declares distbench's benchmarks here"), result.stderr[-2000:]
    assert _pytest_in(tmp_path, "--benchmark-only").returncode == 0   # the project's own benchmark runs


def test_a_wrong_distbench_value_is_refused_by_plain_pytest_too(tmp_path):
    """Without --benchmark-only the matrix does not run, and `--distbench-strategy nosuch`
    passed unseen (exit 0), as a typo in a CI job's options or addopts would; a right
    value leaves the project's own tests to run."""
    (tmp_path / "test_own.py").write_text("def test_own():\n    assert True\n")
    for bad, message in ((["--distbench-strategy", "nosuch"], "ERROR: Unknown strategy 'nosuch'. Known: default"),
                         (["--distbench-repeats", "0"], "ERROR: --distbench-repeats must be an integer from 1 to 1000; "
                                                                        "received 0."),
                         (["--distbench-workers", "0"], "ERROR: Workers (--distbench-workers) must be an integer >= 1; received 0.")):
        result = _pytest_in(tmp_path, *bad)
        assert result.returncode == 4 and result.stderr.strip().startswith(message), result.stderr[-2000:]
    result = _pytest_in(tmp_path, "--distbench-strategy", "default", "--distbench-repeats", "2")
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout[-2000:]


def test_a_target_s_bound_in_addopts_beside_a_matrix_target_leaves_the_project_s_tests_alone(tmp_path):
    """`target` in the matrix file, `--distbench-max-steps` in addopts: every ordinary pytest
    run stopped with "--distbench-max-steps bounds a time-to-target run" (exit 4)."""
    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\ntarget = "default"\n\n[tool.pytest.ini_options]\n'
                                             'addopts = "--distbench-max-steps 2000"\n')
    (tmp_path / "test_own.py").write_text("def test_own():\n    assert True\n")
    result = _pytest_in(tmp_path)
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]


def test_a_value_typed_overrides_addopts_and_one_place_giving_it_twice_is_refused(tmp_path):
    """addopts come before the typed arguments: ``--distbench-repeats 5`` typed over an
    ini's ``--distbench-repeats 3`` was refused as given twice, so addopts could not be
    overridden; PYTEST_ADDOPTS overrides the ini file, and the typed value both."""
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --distbench-repeats 3\n")
    (tmp_path / "test_own.py").write_text("def test_own(pytestconfig):\n"
                                          "    print('REPEATS', pytestconfig.option.distbench_repeats)\n")

    def repeats(*args, env=None):
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *args],
                                cwd=tmp_path, capture_output=True, text=True, timeout=300,
                                env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **(env or {})})
        said = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("REPEATS")]
        return said[0] if said else result.stderr.strip()

    assert repeats() == "3"
    assert repeats("--distbench-repeats", "5") == "5"
    assert repeats(env={"PYTEST_ADDOPTS": "--distbench-repeats=7"}) == "7"
    assert repeats("--distbench-repeats", "2", env={"PYTEST_ADDOPTS": "--distbench-repeats 7"}) == "2"
    assert repeats("--distbench-repeats", "2", "--distbench-repeats=4") == (
        "ERROR: --distbench-repeats was given twice on the command line; it takes one value (one typed overrides "
        "PYTEST_ADDOPTS', which overrides the ini file's)")
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --distbench-repeats 3 --distbench-repeats 4\n")
    assert repeats("--distbench-repeats", "2").startswith(
        "ERROR: --distbench-repeats was given twice in the ini file's addopts; it takes one value")
    # A repeatable option: the latest place's values replace the earlier's (they were added to them).
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --distbench-strategy virtual --distbench-strategy mirrored\n")
    (tmp_path / "test_own.py").write_text("def test_own(pytestconfig):\n"
                                          "    print('REPEATS', ','.join(pytestconfig.option.distbench_strategy))\n")
    assert repeats() == "virtual,mirrored"
    assert repeats("--distbench-strategy", "default") == "default"
    assert repeats(env={"PYTEST_ADDOPTS": "--distbench-strategy=one_gpu"}) == "one_gpu"
    assert repeats("--distbench-strategy", "default", "--distbench-strategy=tpu",
                   env={"PYTEST_ADDOPTS": "--distbench-strategy one_gpu"}) == "default,tpu"
    # What is overridden is not checked: it is not the run's value.
    assert repeats("--distbench-strategy", "default", env={"PYTEST_ADDOPTS": "--distbench-strategy=nosuch"}) == "default"


def test_the_matrix_under_pytest_xdist_is_refused_and_its_cells_carry_their_mark(tmp_path):
    """With ``-n 2`` (and ``--benchmark-skip`` in addopts, which let pytest-benchmark's own
    check through) each xdist worker ran the cells it drew beside the others', saved a run
    of its own and printed no table, exit 0; a wrong value under ``-n 2`` was an
    INTERNALERROR (a worker's refusal). The ``distbench_cell`` mark was never put on a cell,
    and pytest-benchmark's storage flags were refused where no cell runs."""
    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\nstrategies = ["default"]\nloops = ["custom"]\n'
                                             'workloads = ["reuters_cnn"]\n')
    (tmp_path / "test_own.py").write_text("def test_own(benchmark):\n    assert benchmark(sum, [1, 2]) == 3\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def pytest_(*args):
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300, env=env)

    result = pytest_("-n", "2", "--distbench-repeats", "0")
    assert result.returncode == 4 and "INTERNALERROR" not in result.stdout + result.stderr, result.stderr[-2000:]
    assert result.stderr.strip() == "ERROR: --distbench-repeats must be an integer from 1 to 1000; received 0."
    result = pytest_("--benchmark-only", "-n", "2", "--benchmark-skip")
    assert result.returncode == 4 and result.stderr.strip().startswith(
        "ERROR: -n 2: distbench times its cells one at a time"), result.stdout[-2000:] + result.stderr[-2000:]
    assert "-n 0" in result.stderr and not (tmp_path / "results").exists()
    assert pytest_("-n", "2").returncode == 0   # the project's own tests keep their workers
    cells = pytest_("--benchmark-only", "--co", "-m", "distbench_cell")
    assert "test_cell[reuters_cnn-default-custom]" in cells.stdout and "test_own" not in cells.stdout, cells.stdout
    own = pytest_("--benchmark-only", "--co", "-m", "not distbench_cell")
    assert "test_own" in own.stdout and "test_cell[" not in own.stdout, own.stdout
    saved = pytest_("--benchmark-autosave")   # no cell runs: the project's own benchmark, saved by pytest-benchmark
    assert saved.returncode == 0 and list((tmp_path / ".benchmarks").rglob("*.json")), saved.stderr[-2000:]
    # Nor where -m leaves the cells out, the way the docs give to run the project's own benchmarks
    # alone, or where --co lists them: both were refused, exit 4.
    own = pytest_("--benchmark-only", "-m", "not distbench_cell", "--benchmark-compare", "--benchmark-autosave")
    assert own.returncode == 0 and "1 passed" in own.stdout, own.stdout[-2000:] + own.stderr[-2000:]
    listed = pytest_("--benchmark-only", "--co", "--benchmark-autosave")
    assert listed.returncode == 0 and "test_cell[reuters_cnn-default-custom]" in listed.stdout, listed.stderr[-2000:]
    # A mark the project's conftest gives every benchmark, the cells too: -m perf had read as
    # leaving the cells out, and two xdist workers timed a cell each, side by side, exit 0.
    (tmp_path / "conftest.py").write_text(
        "def pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        if 'benchmark' in getattr(item, 'fixturenames', ()):\n"
        "            item.add_marker('perf')\n")
    both = pytest_("--benchmark-only", "-m", "perf", "-n", "2", "--benchmark-skip")
    assert both.returncode == 1 and "pytest-xdist: distbench times its cells one at a time" in both.stdout, \
        both.stdout[-2000:] + both.stderr[-2000:]
    stored = pytest_("--benchmark-only", "-m", "perf", "--benchmark-autosave")
    assert stored.returncode == 4 and "\nERROR: --benchmark-autosave: distbench stores its runs" in stored.stderr, \
        stored.stdout[-2000:] + stored.stderr[-2000:]
    assert not (tmp_path / "results").exists()


def test_a_pyproject_that_does_not_parse_and_names_no_matrix_is_passed_over(tmp_path):
    """Not distbench's to judge: a broken pyproject.toml of some other tool above the project."""
    from distbench.session import matrix_file

    (tmp_path / "pyproject.toml").write_text('[tool.black]\nline-length = \n')
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "distbench.toml").write_text('strategies = ["default"]\n')
    assert matrix_file.find(tmp_path / "project") == tmp_path / "project" / "distbench.toml"
    assert matrix_file.find(tmp_path) is None


def test_a_matrix_file_that_does_not_parse_is_refused_not_passed_over(tmp_path):
    """A slip in pyproject.toml (a key given twice) had distbench run its whole default
    matrix instead of the project's."""
    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\nstrategies = ["default"]\nstrategies = ["virtual"]\n')
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-m", "distbench", "run", "--no-save"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env=env)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"distbench: error: Cannot read the matrix file {tmp_path / 'pyproject.toml'}: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("order", [("skipped", "error"), ("error", "skipped")])
def test_a_cell_that_skipped_in_one_process_and_crashed_in_another_fails(order):
    """A worker's own skip (its device probe failed) in one process and a crash in the next:
    it read SKIPPED (pytest exit 0) when the skip came first; ``distbench run`` fails it."""
    from types import SimpleNamespace

    from distbench.pytest_plugin import matrix

    records = {"skipped": {"status": "skipped", "reason": "the device probe failed"},
               "error": {"status": "error", "reason": "timed out after 3 s", "output_tail": ""}}
    session = SimpleNamespace(run_cell=lambda cell: [records[kind] for kind in order])
    benchmark = SimpleNamespace()
    with pytest.raises(pytest.fail.Exception, match="x-default-fit: timed out after 3 s"):
        matrix.test_cell(benchmark, SimpleNamespace(id="x-default-fit"), session)
    assert benchmark.has_error


@pytest.mark.parametrize("order", [("ok", "skipped"), ("skipped", "ok")])
def test_a_cell_that_skipped_in_one_process_and_measured_in_another_fails(order):
    """Its measured processes alone were its benchmark (pytest passed it), where the table
    said ``partly failed`` and ``distbench run`` now exits 1."""
    from types import SimpleNamespace

    from distbench.pytest_plugin import matrix

    records = {"skipped": {"status": "skipped", "reason": "the device probe failed"},
               "ok": {"status": "ok", "steps": {"samples": [0.01, 0.011]}}}
    session = SimpleNamespace(run_cell=lambda cell: [records[kind] for kind in order])
    benchmark = SimpleNamespace(extra_info={})
    with pytest.raises(pytest.fail.Exception, match="x-default-fit: 1 of 2 processes skipped it, the others measured "
                                                    "it: the device probe failed"):
        matrix.test_cell(benchmark, SimpleNamespace(id="x-default-fit"), session)
    assert benchmark.has_error


def test_a_save_that_fails_is_a_line_and_a_failed_session_not_an_internal_error(tmp_path):
    """A machine folder that cannot be made (a file in its place, a full disk): the save's
    UserError left pytest_sessionfinish as pytest's INTERNALERROR traceback. Now the summary
    says why and where the run is kept, and the session fails."""
    import os
    from types import SimpleNamespace

    import pytest
    from distbench.pytest_plugin import plugin
    from distbench.session import options
    from distbench.session.session import Session
    from distbench.storage.machine import this_machine_id

    from tests.bench.runs import record, samples

    results = tmp_path / "results"
    results.mkdir()
    (results / this_machine_id()).write_text("a file where this machine's folder should be")
    values = options.from_namespace(SimpleNamespace(**{o.name: None for o in options.OPTIONS}))
    session = Session.from_options({**values, "workload": ["reuters_cnn"], "strategy": ["default"],
                                    "loop": ["custom"], "results": str(results), "guard_seeds": 0})
    session.records = {"reuters_cnn-default-custom": [record("reuters_cnn-default-custom", samples(10))]}
    config = SimpleNamespace(stash={plugin._SESSION: session})
    pytest_session = SimpleNamespace(config=config, exitstatus=pytest.ExitCode.OK)
    plugin.pytest_sessionfinish(pytest_session, pytest.ExitCode.OK)
    assert pytest_session.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert session.unsaved.startswith(f"Cannot write results to {results / this_machine_id()}: ")
    kept = session.unsaved.split("The run is kept in ", 1)[1].split(":", 1)[0]
    lines = []
    plugin.pytest_terminal_summary(SimpleNamespace(section=lambda *a, **k: None,
                                                   write_line=lambda line, **k: lines.append(line)), 1, config)
    os.unlink(kept)
    assert any(line.strip().startswith("distbench: error: Cannot write results to") for line in lines), lines


def test_a_session_that_x_stopped_is_saved_cut_short_with_the_cells_it_never_ran(tmp_path):
    """``-x`` / ``--maxfail`` (in addopts, say) stops the session after a failed cell: the run
    was saved as if whole, the cells after it absent, which ``check --allow-missing`` passed."""
    from types import SimpleNamespace

    from distbench.pytest_plugin import plugin
    from distbench.session import options
    from distbench.session.session import Session
    from distbench.storage.files import load

    from tests.bench.runs import record, samples

    values = options.from_namespace(SimpleNamespace(**{o.name: None for o in options.OPTIONS}))

    def stopped_after(records: dict, overhead: bool = False, stepwise: bool = False):
        """A session that ``-x`` stopped (pytest sets ``shouldfail``: exit 1) with ``records``;
        ``overhead``: the matrix has the overhead benchmark, which ``-k fit`` deselected;
        ``stepwise``: ``--sw`` stopped it (``shouldstop``: pytest's exit is "interrupted")."""
        session = Session.from_options({**values, "workload": ["reuters_cnn"], "strategy": ["default"],
                                        "loop": ["custom", "fit"], "results": str(tmp_path), "guard_seeds": 0,
                                        "overhead": overhead})
        session.records = records(session.plan)
        if overhead:
            assert session.overhead_plan   # planned, then deselected
            session.selected, session.selected_overhead = session.plan[1:], []
        status = pytest.ExitCode.INTERRUPTED if stepwise else pytest.ExitCode.TESTS_FAILED
        reason = "Test failed, continuing from this test next run."
        pytest_session = SimpleNamespace(config=SimpleNamespace(stash={plugin._SESSION: session}), exitstatus=status,
                                         shouldstop=reason if stepwise else False,
                                         shouldfail=False if stepwise else "stopping after 1 failures")
        plugin.pytest_sessionfinish(pytest_session, status)
        return session.plan, load(session.saved)

    (first, second), run = stopped_after(lambda plan: {plan[0].id: [record(plan[0].id, samples(10))]})
    assert run.interrupted and run.results[second.id].status == "missing" and not run.results[second.id].ran
    assert run.results[first.id].whole

    def crashed(spec):
        return {"cell": spec.id, "status": "error", "reason": "Traceback ...", "config": spec.to_dict()}

    # Stopped by the last cell's failure: every cell ran, nothing was cut short.
    (first, second), run = stopped_after(lambda plan: {plan[0].id: [record(plan[0].id, samples(10))],
                                                       plan[1].id: [crashed(plan[1])]})
    assert not run.interrupted and run.results[first.id].whole and run.results[second.id].status == "error"
    (first, second), run = stopped_after(lambda plan: {plan[0].id: [record(plan[0].id, samples(10))],
                                                       plan[1].id: [crashed(plan[1])]}, stepwise=True)
    assert not run.interrupted   # --sw, after the last cell
    _, run = stopped_after(lambda plan: {plan[0].id: [crashed(plan[0])]}, stepwise=True)
    assert run.interrupted       # --sw, before it
    # -k fit: the fit cell, the only one selected, failed; the overhead benchmark was never selected.
    (_, second), run = stopped_after(lambda plan: {plan[1].id: [crashed(plan[1])]}, overhead=True)
    assert not run.interrupted and run.results[second.id].status == "error"


def test_a_failed_cell_s_traceback_is_cut_at_a_line_and_says_so():
    """A long traceback was cut 2,500 characters from its end, mid-word, with nothing said."""
    from distbench.pytest_plugin.matrix import _detail

    frames = "".join(f'  File "/p/model_{k}.py", line {k}, in build\n    layer_{k} = make(units={k})\n'
                     for k in range(100))
    whole = "Traceback (most recent call last):\n" + frames + "ValueError: units < 0\n"
    first, *rest = _detail({"traceback": whole}).splitlines()
    assert first.endswith(" earlier lines left out]") and rest[-1] == "ValueError: units < 0"
    assert "\n".join(rest) + "\n" == whole[-len("\n".join(rest)) - 1:] and len("\n".join(rest)) < 2500
    assert whole[-len("\n".join(rest)) - 2] == "\n"   # from a line's start, not mid-word
    assert int(first.strip("[").split()[0]) + len(rest) == len(whole.splitlines())
    assert _detail({"traceback": "short\n"}) == "short\n"


def test_the_matrix_is_found_whatever_rootdir_and_a_spaced_path_value_is_explained(tmp_path):
    """--rootdir above the project had dropped its matrix without a word (pytest still read its
    pyproject.toml); a path value typed after a space is a test path to pytest when it looks
    for its root folder, and the refusal named the data folder as where it had looked."""
    project, data = tmp_path / "project", tmp_path / "data"
    project.mkdir()
    data.mkdir()
    (project / "pyproject.toml").write_text('[tool.distbench]\nstrategies = ["default"]\nloops = ["custom"]\n'
                                            'workloads = ["reuters_cnn"]\nguard_seeds = 0\n')
    (project / "test_own.py").write_text("def test_own():\n    assert True\n")
    listed = _pytest_in(project, "--benchmark-only", "--co", f"--rootdir={tmp_path}")
    assert listed.returncode == 0 and "distbench-matrix.py::test_cell[reuters_cnn-default-custom]" in listed.stdout, \
        listed.stdout[-2000:] + listed.stderr[-2000:]
    # A distbench.toml beside pytest.ini; and a setup.cfg that names distbench, no TOML, no matrix file
    # (read as one, it stopped the project's own benchmarks: "Cannot read the matrix file .../setup.cfg").
    beside = tmp_path / "beside"
    beside.mkdir()
    (beside / "pytest.ini").write_text("[pytest]\n")
    (beside / "distbench.toml").write_text('strategies = ["default"]\nloops = ["custom"]\nworkloads = ["reuters_cnn"]\n')
    listed = _pytest_in(beside, "--benchmark-only", "--co", f"--rootdir={tmp_path}", "-c", str(beside / "pytest.ini"))
    assert "distbench-matrix.py::test_cell[reuters_cnn-default-custom]" in listed.stdout, listed.stdout + listed.stderr
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "setup.cfg").write_text("[options]\ninstall_requires = distbench\n[tool:pytest]\n")
    (cfg / "test_b.py").write_text("def test_b(benchmark):\n    assert benchmark(sum, [1]) == 1\n")
    own = _pytest_in(cfg, "--benchmark-only")
    assert own.returncode == 0 and "1 passed" in own.stdout, own.stdout[-2000:] + own.stderr[-2000:]
    spaced = _pytest_in(project, "--benchmark-only", "--distbench-data", str(data))
    assert spaced.returncode == 4 and spaced.stderr.strip().endswith(
        f"(pytest found its root folder before reading distbench's options, taking {data} for a test path: give "
        "such values with '=', as --distbench-data=PATH)"), spaced.stderr
