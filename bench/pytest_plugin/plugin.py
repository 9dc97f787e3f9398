"""distbench's pytest plugin (a ``pytest11`` entry point): the matrix as pytest-benchmark benchmarks.

In any project with distbench installed, ``pytest --benchmark-only`` collects the
project's matrix (:mod:`distbench.pytest_plugin.matrix`; ``[tool.distbench]`` in its ``pyproject.toml``, or
a ``distbench.toml``, and the ``--distbench-*`` options) and runs one benchmark per cell
(ids like ``reuters_cnn-mirrored-custom``), each in its own worker process, saving the run
under the project's ``results/``. A project without a matrix file gets nothing from it
(distbench's own checkout declares one). The statistics pytest-benchmark shows and
stores for a cell are its steady-state step times, measured inside the worker (warm-up
excluded, device synced), not the process's wall time; the whole record goes into
``extra_info["distbench"]``.

pytest-benchmark's own ``--benchmark-compare``, ``--benchmark-compare-fail`` and
``--benchmark-autosave`` look for runs under its own storage and machine names, not
distbench's: with a distbench matrix they are refused with one line that points to
``distbench check``.
"""

from __future__ import annotations

# This module loads into every pytest run of an environment with distbench installed (a
# pytest11 entry point), benchmarks or not: it imports distbench's session, storage and
# analysis inside the hooks that need them, so that an ordinary test run loads only the
# option table (distbench.session.options: no numpy, no workloads, no TensorFlow; tested
# in tests/bench/test_pytest_plugin.py), unless --distbench-* values are given (typed or
# in addopts): checking them loads the session's modules, numpy and the workloads (about
# 0.6 s here; never TensorFlow).
import importlib
import os
import shlex
import textwrap
from pathlib import Path

import pytest

from distbench.pytest_plugin import node_ids, refusals
from distbench.pytest_plugin.refusals import CELL_MARK

MATRIX = Path(__file__).with_name("matrix.py")   # the benchmarks this plugin adds to a project's session


def pytest_addoption(parser: pytest.Parser) -> None:
    # inside the hook: see the note on imports at the top
    from distbench.session import options

    options.add_to_pytest(parser.getgroup("distbench"))


_SESSION = pytest.StashKey["object"]()


def pytest_configure(config: pytest.Config) -> None:
    _one_value_each(config)   # again: a run whose pytest_cmdline_main is not called (pytester, xdist's workers)
    if config.getoption("benchmark_only", default=False) and matrix_file(config) is not None:
        node_ids.take(config)   # `distbench-matrix.py::test_cell[ID]`, as pytest prints a cell, is no path to collect
    config.addinivalue_line("markers", f"{CELL_MARK}: a distbench benchmark cell (runs with --benchmark-only)")


def _one_value_each(config: pytest.Config) -> None:
    """A single-valued option given twice in one place is refused; a repeatable one keeps the
    latest place's values (typed over PYTEST_ADDOPTS over the ini file's addopts)."""
    from distbench.session import options   # inside the hook: see the note on imports at the top

    places = {"on the command line": [str(a) for a in config.invocation_params.args],
              "in PYTEST_ADDOPTS": shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))}
    twice = options.given_twice(config.option, places)
    if twice:
        raise pytest.UsageError(twice)
    options.keep_latest_place(config.option, places)


_MATRIX_FILE = pytest.StashKey["object"]()


def matrix_file(config: pytest.Config):
    """The project's matrix file (from pytest's rootdir up, else from the folder of pytest's
    configuration file up: ``--rootdir`` elsewhere had dropped the matrix unsaid), or None;
    looked for once per session (three hooks ask)."""
    if _MATRIX_FILE not in config.stash:
        # inside the hook: see the note on imports at the top
        from distbench.core.errors import UserError
        from distbench.session import matrix_file as mf

        try:
            found = mf.find(config.rootpath)
            if found is None and config.inipath is not None:   # from the configuration file's folder up
                found = mf.find(Path(config.inipath).parent)
            config.stash[_MATRIX_FILE] = found
        except UserError as exc:   # a matrix file that does not parse: the benchmarks' error, one line
            if config.getoption("benchmark_only", default=False):
                raise pytest.UsageError(str(exc)) from None
            config.stash[_MATRIX_FILE] = None   # an ordinary test run is not distbench's to stop
    return config.stash[_MATRIX_FILE]


def session_of(config: pytest.Config):
    """The distbench session of this pytest run, resolved once: the --distbench-* options
    over the project's matrix file."""
    if _SESSION not in config.stash:
        # inside the hook: see the note on imports at the top
        from distbench.core.errors import UserError
        from distbench.session import matrix_file as mf
        from distbench.session import options
        from distbench.session.session import Session

        path = matrix_file(config)
        declared, given = {}, options.from_namespace(config.option, "distbench_")
        try:
            declared = mf.read(path) if path else {}
            values = mf.merge(declared, given)
            if values.get("results") is None and path is not None:
                values["results"] = str(path.parent / "results")   # the project's results/, wherever pytest runs
            config.stash[_SESSION] = Session.from_options(values, matrix=str(path) if path else None)
        except UserError as exc:   # bad input: pytest's one-line usage error (exit 4), not an INTERNALERROR
            raise pytest.UsageError(options.as_pytest(mf.where(exc, path, declared, given))) from None
    return config.stash[_SESSION]


def _check_writable(session) -> None:
    # inside the hook: see the note on imports at the top
    from distbench.core.errors import UserError
    from distbench.session import options

    try:
        session.check_writable()
    except UserError as exc:
        raise pytest.UsageError(options.as_pytest(str(exc))) from None


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Before pytest-benchmark reads its storage (and fails on distbench's), and before
    pytest-xdist starts its workers: where the matrix will run, refuse its storage flags and
    parallel workers with one line each (pytest's usage error, exit 4); elsewhere check the
    ``--distbench-*`` values given, here, where xdist's controller sees them (a worker's
    refusal was an INTERNALERROR)."""
    if config.getoption("help", default=False) or config.getoption("version", default=False):
        return
    _one_value_each(config)   # before the values are checked: an overridden one is not the run's
    if not config.getoption("benchmark_only", default=False):
        node_ids.refuse_without_matrix(config)
        _check_given(config)
    elif matrix_file(config) is not None and _asks_for_matrix(config) and refusals.may_measure_cells(config):
        refusals.pytest_benchmark_storage(config)
        refusals.xdist(config)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --benchmark-only and a declared matrix, adds the matrix's benchmarks (the
    -k and -m selections, which run after this hook, apply to them as to any test)."""
    if not config.getoption("benchmark_only", default=False):
        return   # a wrong --distbench-* value was refused in pytest_cmdline_main
    if matrix_file(config) is None:
        _refuse_given_without_matrix(config)
        return
    ours = session_of(config)   # bad input stops the run here, before the matrix's module is collected
    if not config.getoption("collectonly", default=False):
        _check_writable(ours)   # before hours of benchmarking, not at the end (a traceback, every record lost)
    if not any("distbench_cell" in getattr(item, "fixturenames", ()) for item in items) and _asks_for_matrix(config):
        # (a project that collects distbench.pytest_plugin.matrix itself has them already)
        module = pytest.Module.from_parent(session, path=node_ids.matrix_path(config, MATRIX))
        # Imported by its name, not by pytest from its path: in an editable install the file
        # sits in a folder named bench/, which pytest would import as `bench` (a project's
        # own bench.py would then shadow it, or it the project's).
        module.obj = importlib.import_module("distbench.pytest_plugin.matrix")
        added = _items(module)
        node_ids.place(added, module.path)
        items.extend(node_ids.select(config, added))   # those named by node id, the rest deselected
        # Reported as collected, as pytest reports what it collects itself: its count line
        # read "collected 1 item / 2 deselected / -1 selected" in a project with a test of its own.
        config.hook.pytest_collectreport(report=pytest.CollectReport(module.nodeid, "passed", None, added))
    # pytest-benchmark would skip every other test, one "Skipping non-benchmark" line each
    # under -rs: deselect them, as -k does (one count in the closing line).
    # The overhead benchmark without overhead cells (not asked for) is pytest's "got empty
    # parameter set" skip: deselected as well.
    no_overhead = not session_of(config).overhead_plan
    benchmarks, others = [], []
    for item in items:
        names = getattr(item, "fixturenames", ())
        if {"distbench_cell", "distbench_overhead_cell"} & set(names):
            item.add_marker(CELL_MARK)   # -m distbench_cell / "not distbench_cell", which run after this hook
        unasked = no_overhead and "distbench_overhead_cell" in names
        (benchmarks if "benchmark" in names and not unasked else others).append(item)
    if others:
        config.hook.pytest_deselected(items=others)
        items[:] = benchmarks


def _check_given(config: pytest.Config) -> None:
    """Without --benchmark-only the matrix does not run, but a wrong ``--distbench-*`` value
    (typed, or in addopts) is still pytest's usage error, not silence; checked without
    loading the project's references or TensorFlow."""
    given = _given(config)
    if given:
        # inside the hook, and only when values are given: see the note on imports at the top
        from distbench.core.errors import UserError
        from distbench.session import options
        from distbench.session.session import check_given

        try:
            check_given(given)
        except UserError as exc:   # named as typed: --distbench-repeats, not --repeats
            raise pytest.UsageError(options.as_pytest(str(exc))) from None


def _refuse_given_without_matrix(config: pytest.Config) -> None:
    """--benchmark-only with ``--distbench-*`` values and no matrix file: nothing reads them
    (only the project's own benchmarks run), and a ``--distbench-repeats 0`` or a workload
    asked for was passed over without a word."""
    from distbench.session import options   # inside the hook: see the note on imports at the top

    given = _given(config)
    named = [f"--distbench-{o.cli[2:]}" for o in options.OPTIONS if o.name in given]
    if named:
        raise pytest.UsageError(
            f"{', '.join(named)} given, but no matrix file declares distbench's benchmarks here (distbench.toml, "
            f"or [tool.distbench] in pyproject.toml, from {config.rootpath} up), so nothing would read "
            f"{'them' if len(named) > 1 else 'it'}: add one (`workloads = [...]`), or run `distbench run` "
            f"with the same options.{_spaced_path(config)}")


def _spaced_path(config: pytest.Config) -> str:
    """A hint when a ``--distbench-*`` value that is a path was typed after a space: pytest
    looks for its root folder before plugins' options are known, taking it for a test path
    (the folder found from a data folder has no matrix file)."""
    args = [str(a) for a in config.invocation_params.args]
    spaced = [value for option, value in zip(args, args[1:])
              if option.startswith("--distbench-") and "=" not in option and os.path.exists(value)]
    if not spaced:
        return ""
    return (f" (pytest found its root folder before reading distbench's options, taking {spaced[0]} for a test "
            "path: give such values with '=', as --distbench-data=PATH)")


def _given(config: pytest.Config) -> dict:
    """The ``--distbench-*`` values given (typed, or in addopts), by option name."""
    from distbench.session import options   # inside the hook: see the note on imports at the top

    return {k: v for k, v in options.from_namespace(config.option, "distbench_").items()
            if v is not None and v is not False and v != []}   # 0 is a value given (False == 0)


def _asks_for_matrix(config: pytest.Config) -> bool:
    """Whether the run's arguments leave room for the matrix: none (the project's testpaths
    or folder), or a folder. Files and node ids name the tests to run (``pytest
    --benchmark-only tests/test_x.py::test_y`` ran the whole matrix and deselected the test
    named)."""
    if config.args_source != pytest.Config.ArgsSource.ARGS or node_ids.named(config):
        return True
    return any((config.invocation_params.dir / arg.split("::")[0]).is_dir() for arg in config.args)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The cells this run will measure, after -k and -m: an interrupted run lists those it
    did not reach as missing, not the cells the selection left out."""
    config = session.config
    if not config.getoption("benchmark_only", default=False) or matrix_file(config) is None:
        return
    chosen = [getattr(getattr(item, "callspec", None), "params", {}) for item in session.items]
    session_of(config).selected = [params["distbench_cell"] for params in chosen if "distbench_cell" in params]
    session_of(config).selected_overhead = [params["distbench_overhead_cell"] for params in chosen
                                            if "distbench_overhead_cell" in params]
    refusals.selected_cells(config, session_of(config).selected + session_of(config).selected_overhead)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A cell drawn by a pytest-xdist worker fails, one line, never timed beside another's."""
    refused = refusals.in_parallel(item)
    if refused:
        pytest.fail(refused, pytrace=False)


def _items(collector) -> list[pytest.Item]:
    found = []
    for node in collector.collect():
        found += [node] if isinstance(node, pytest.Item) else _items(node)
    return found


# pytest's ``-rs`` line for a skipped cell: ``SKIPPED [N] distbench: <reason>``, the reason
# shortened to fit 120 columns (the distbench section above it has every reason whole,
# grouped). Without it the line named matrix.py's path in the installed package and the
# whole reason: up to 233 columns for the main command's cross-process skips.
SKIP_LINE_ROOM = 120 - len("SKIPPED [999] distbench: ")


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Only the matrix's own skip (a cell's, or the overhead benchmark's: both carry the mark),
    # raised while it runs (it cannot run here): a user's skip mark or pytest-benchmark's
    # skips (at set-up) and xfails keep pytest's line. Last, after --junitxml has written
    # pytest's own (the whole reason, where it was raised: it had read "distbench:None: ...");
    # the terminal's summary, at the end, reads this one.
    if (report.skipped and report.when == "call" and "distbench_cell" in report.keywords
            and not hasattr(report, "wasxfail") and isinstance(report.longrepr, tuple)):
        report.longrepr = ("distbench", None, textwrap.shorten(str(report.longrepr[2]).removeprefix("Skipped: "),
                                                               SKIP_LINE_ROOM, placeholder=" ..."))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrizes the matrix (with the accuracy guard's seeds) and the overhead benchmark."""
    if "distbench_cell" in metafunc.fixturenames:
        cells = session_of(metafunc.config).plan
        metafunc.parametrize("distbench_cell", cells, ids=[c.process_id for c in cells])
    if "distbench_overhead_cell" in metafunc.fixturenames:
        cells = session_of(metafunc.config).overhead_plan
        metafunc.parametrize("distbench_overhead_cell", cells, ids=[c.id for c in cells])


@pytest.fixture(scope="session")
def distbench_session(request: pytest.FixtureRequest):
    """This run's distbench session: runs cells, collects their records, saves the run."""
    return session_of(request.config)


@pytest.hookimpl(optionalhook=True)   # pytest-benchmark's hooks: absent under -p no:benchmark
def pytest_benchmark_update_machine_info(config, machine_info: dict) -> None:
    """distbench's fingerprint in pytest-benchmark's own output (``--benchmark-json``) of a
    session whose matrix ran: it reads TensorFlow's devices, which a session of the project's
    own tests and benchmarks (``--benchmark-compare``, ``--benchmark-json`` without the
    matrix) must not pay for."""
    distbench = config.stash.get(_SESSION, None)
    if distbench is None or not distbench.records:
        return
    # inside the hook: see the note on imports at the top
    from distbench.storage.machine import machine_info as distbench_machine_info

    machine_info["distbench"] = distbench_machine_info(cpu=machine_info.get("cpu"))


@pytest.hookimpl(optionalhook=True)   # pytest-benchmark's hooks: absent under -p no:benchmark
def pytest_benchmark_compare_machine_info(config, benchmarksession, machine_info, compared_benchmark) -> None:
    """pytest-benchmark compares machine_info field by field and warns at any difference
    (a clock, a load average); distbench's fingerprint says what matters for speed (where
    there is one: a session whose matrix ran)."""
    if "distbench" not in machine_info:
        return
    # inside the hook: see the note on imports at the top
    from distbench.render.comparison_table import machine_line
    from distbench.storage.machine import machine_diff

    diff = machine_diff(compared_benchmark.get("machine_info", {}), machine_info)
    if diff:
        benchmarksession.logger.warning(f"Benchmark machine_info differs from {compared_benchmark.get('path', 'the saved run')}: "
                                        + machine_line(diff))


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    """Judges and saves the matrix's records (and any overhead records) as one run."""
    distbench = session.config.stash.get(_SESSION, None)
    if distbench is None or not (distbench.records or distbench.overhead):
        return
    # Ctrl-C, or -x / --maxfail / --sw stopping the session before the matrix's end: the
    # cells it never ran are listed as such, and the run is marked cut short (never a whole
    # baseline, never a pass). Stopped after the last cell, nothing was cut short. (--sw's
    # stop, like Ctrl-C, ends pytest as interrupted; only Ctrl-C leaves no stop reason.)
    stopped = getattr(session, "shouldstop", False) or getattr(session, "shouldfail", False)
    ctrl_c = exitstatus == pytest.ExitCode.INTERRUPTED and not stopped
    distbench.interrupted = ctrl_c or (bool(stopped) and not distbench.all_ran)
    from distbench.core.errors import UserError   # inside the hook: see the note on imports at the top

    try:
        distbench.finish()
    except UserError as exc:   # a save that failed (a full disk): said in the summary, not an INTERNALERROR
        distbench.unsaved = str(exc)
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    # A failed process (a test another plugin reran, or marked xfail, passed), or every cell
    # skipped: no pass, as `distbench run` exits 1 or 3.
    if distbench.exit_status in (FAILED, NOTHING_MEASURED) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


FAILED, NOTHING_MEASURED = 1, 3   # Session.exit_status: a process failed; every cell (and the overhead) skipped


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    distbench = config.stash.get(_SESSION, None)
    if distbench is not None and not (distbench.records or distbench.overhead) and distbench.begun and (
            exitstatus == pytest.ExitCode.INTERRUPTED):   # as `run` says it: pytest's banner alone named no run
        terminalreporter.write_line("distbench: interrupted before any process finished: nothing saved", red=True)
    if distbench is None or not (distbench.records or distbench.overhead):
        return
    # inside the hook: see the note on imports at the top
    from distbench.render import summary
    terminalreporter.section("distbench")
    terminalreporter.write_line(distbench.summary())
    pooled = summary.pooled_line(distbench.results)
    if pooled:
        terminalreporter.write_line("\n" + pooled)
    if distbench.saved:
        terminalreporter.write_line("\n" + summary.saved_line(distbench.saved))
    if distbench.unsaved:
        terminalreporter.write_line("\n" + summary.wrap(f"distbench: error: {distbench.unsaved}"), red=True)
    if distbench.exit_status == NOTHING_MEASURED and not distbench.interrupted:
        terminalreporter.write_line("\n" + summary.wrap(
            "distbench: nothing was measured (every cell skipped, each with its reason above): a run that measured "
            "nothing is no pass."), red=True)
