"""One session for both front ends: one option table, one plan, runs that lose nothing."""

import argparse
import json
import os
import signal
import subprocess
import sys

import pytest
from distbench.analysis.compare import compare_runs
from distbench.cli.main import build_parser
from distbench.render import comparison_table, run_table, summary
from distbench.session import options
from distbench.session.session import Session
from distbench.storage.files import load

from tests.bench.runs import record, samples
from tests.processes import all_gone, gone


class _Group:
    """Stands in for pytest's option group: records what the plugin adds."""

    def __init__(self):
        self.parser = argparse.ArgumentParser()

    def addoption(self, name, **kwargs):
        self.parser.add_argument(name, **kwargs)


def _pytest_options(argv=()):
    from distbench.pytest_plugin.plugin import pytest_addoption

    group = _Group()
    pytest_addoption(type("P", (), {"getgroup": lambda self, name: group})())
    return group.parser.parse_args(list(argv))


def _cli_options(argv=()):
    return build_parser().parse_args(["run", *argv])


def _every_option(cli: bool) -> list[str]:
    """Every option of the table given a value other than its default, as each front end spells it."""
    argv = []
    for o in options.OPTIONS:
        flag = o.cli if cli else o.pytest
        if o.flag:
            argv.append(flag)
        else:
            value = o.choices[-1] if o.choices else "7" if o.type in (int, float) else "given"
            argv += [f"{flag}={value}"]
    return argv


def test_cli_and_pytest_take_every_option_to_the_same_place():
    """Every option given through both front ends arrives, under its name, with its value
    (an option a front end lacked, or put elsewhere, would be missing or None here)."""
    cli = options.from_namespace(build_parser().parse_args(["run", *_every_option(True)]))
    plugin = options.from_namespace(_pytest_options(_every_option(False)), "distbench_")
    assert cli == plugin
    assert set(cli) == {o.name for o in options.OPTIONS}
    assert all(value not in (None, [], False) for value in cli.values()), cli


def test_both_front_ends_resolve_to_the_same_plan():
    cli = Session.from_options(options.from_namespace(_cli_options(
        ["--workload", "reuters_cnn", "--strategy", "virtual", "--global-batch", "64", "--repeats", "2"])))
    plugin = Session.from_options(options.from_namespace(_pytest_options(
        ["--distbench-workload", "reuters_cnn", "--distbench-strategy", "virtual", "--distbench-global-batch", "64",
         "--distbench-repeats", "2"]), "distbench_"))
    assert [c.to_dict() for c in cli.plan] == [c.to_dict() for c in plugin.plan]
    assert cli.repeats == plugin.repeats == 2
    assert cli.plan[0].global_batch == 64 and cli.plan[-1].id == "reuters_cnn-default-fit-init4"


class _StoppedSuite:
    """Runs ``finished`` processes (the first cell's by default), then the user presses Ctrl-C."""

    hw = None

    def __init__(self, finished=1):
        self.calls, self.finished = 0, finished

    def run(self, spec, task="cell"):
        if task == "peak":
            return {"cell": "peak", "status": "ok", "peaks": {"/CPU:0": {
                "kind": "CPU", "shape": [4096] * 3, "gflops": 100.0, "bandwidth_gbs": 10.0, "device_name": ""}}}
        self.calls += 1
        if self.calls > self.finished:
            raise KeyboardInterrupt
        rec = record(spec.id, samples(10))
        rec["config"] = spec.to_dict()
        return rec

    def preflight(self, specs):
        pass   # built-in workloads only: nothing to check

    def run_all(self, specs, repeats, progress):
        from distbench.session.suite import Suite

        return Suite.run_all(self, specs, repeats, progress)


def test_an_interrupted_run_keeps_its_finished_cells_and_says_so(tmp_path):

    values = options.from_namespace(_cli_options(["--workload", "reuters_cnn", "--strategy", "default",
                                                  "--loop", "fit", "--loop", "custom", "--results", str(tmp_path)]))
    session = Session.from_options(values, suite=_StoppedSuite())
    session.run_all()
    assert session.interrupted
    session.finish()
    run = load(session.saved)
    assert run.interrupted
    statuses = {c: r.status for c, r in run.results.items()}
    assert statuses == {"reuters_cnn-default-fit": "ok", "reuters_cnn-default-custom": "missing",
                        **{f"reuters_cnn-default-fit-init{k}": "missing" for k in range(1, 5)}}
    assert comparison_table.run_heading("B", run).splitlines()[1] == (
        "B INTERRUPTED: 1 of 6 planned processes ran before the run was stopped; reuters_cnn-default-custom, "
        + ", ".join(f"reuters_cnn-default-fit-init{k}" for k in range(1, 5)) + " did not run.")
    assert "INTERRUPTED: 1 of 6 planned processes ran" in session.summary()


def test_an_interrupted_run_counts_processes_and_names_the_cells_it_left_short(tmp_path):
    """--repeats 2 over four cells, Ctrl-C after 5 of the 8 processes: the line read "4 of 4
    planned cells ran ...; the rest are listed as missing", and the stored run had no trace
    of the repeats that never ran."""
    values = options.from_namespace(_cli_options(
        ["--workload", "reuters_cnn", "--data", "synthetic", "--strategy", "default", "--strategy", "virtual",
         "--loop", "fit", "--loop", "custom", "--repeats", "2", "--no-peak", "--guard-seeds", "0",
         "--results", str(tmp_path)]))
    session = Session.from_options(values, suite=_StoppedSuite(finished=5))
    session.run_all()
    session.finish()
    short = "reuters_cnn-default-custom, reuters_cnn-virtual-fit, reuters_cnn-virtual-custom"
    expected = (f"INTERRUPTED: 5 of 8 planned processes ran before the run was stopped; {short} have 1 of 2 "
                "repeats.")
    printed = session.summary()
    assert expected in " ".join(printed.split()), printed          # wrapped to 120 columns
    assert max(map(len, printed.splitlines())) <= 120, printed
    run = load(session.saved)
    assert run.planned_repeats == {cell: 2 for cell in run.results}
    assert run_table.interrupted_line(run.results) == expected      # the report's line, from the stored run
    assert [r.id for r in run.results.values() if r.short] == short.split(", ")
    assert "1 of 2" in summary.render_summary(run.results)          # the short cells' rows say so
    other = load(session.saved)   # compare names the short cells too (it said "not every planned cell ran")
    text = " ".join(comparison_table.comparison_text(compare_runs(other, run), "table").split())
    assert f"A {expected}" in text and f"B {expected}" in text, text


def test_pytest_s_cell_by_cell_run_keeps_the_processes_that_ended_before_ctrl_c(tmp_path):
    """pytest runs the plan cell by cell (``run_cell``): Ctrl-C in a cell's second process lost
    its first, which had ended (no run saved, nothing said), where `run` keeps it (a user's trial)."""
    values = options.from_namespace(_cli_options(
        ["--workload", "reuters_cnn", "--data", "synthetic", "--strategy", "default", "--loop", "custom",
         "--repeats", "3", "--no-peak", "--guard-seeds", "0", "--results", str(tmp_path)]))
    session = Session.from_options(values, suite=_StoppedSuite(finished=1))
    with pytest.raises(KeyboardInterrupt):
        session.run_cell(session.plan[0])
    session.interrupted = True   # as the plugin's session finish sets it on pytest's interruption
    session.finish()
    run = load(session.saved)
    (cell,) = run.results.values()
    assert run.interrupted and len(cell.ok) == 1 and cell.short, cell


def test_an_interrupted_run_names_the_cells_it_never_started(tmp_path):
    values = options.from_namespace(_cli_options(["--workload", "reuters_cnn", "--strategy", "default",
                                                  "--loop", "fit", "--loop", "custom", "--guard-seeds", "0",
                                                  "--repeats", "2", "--no-peak", "--results", str(tmp_path)]))
    session = Session.from_options(values, suite=_StoppedSuite(finished=1))
    session.run_all()
    session.finish()
    assert run_table.interrupted_line(load(session.saved).results) == (
        "INTERRUPTED: 1 of 4 planned processes ran before the run was stopped; reuters_cnn-default-fit has 1 of 2 "
        "repeats; reuters_cnn-default-custom did not run.")


@pytest.mark.parametrize("seeds", [0, 1])
def test_the_report_of_a_run_with_the_guard_off_says_it_was_off(tmp_path, seeds):
    """--guard-seeds 0 read "the reference ran with one seed only (...)" (or "no reference
    cell ..."), as if the guard had been on and lacked something."""
    from distbench.render.report import write_report

    values = options.from_namespace(_cli_options(["--workload", "reuters_cnn", "--strategy", "default",
                                                  "--loop", "fit", "--loop", "custom", "--guard-seeds", str(seeds),
                                                  "--no-peak", "--results", str(tmp_path / "results")]))
    session = Session.from_options(values, suite=_StoppedSuite(finished=99))
    session.run_all()
    session.finish()
    run = load(session.saved)
    markdown, page = write_report(run, {run.machine_id: [run]}, tmp_path / "report")
    section = markdown.read_text().split("## Accuracy guard")[1].split("##")[0]
    off = (f"The accuracy guard was off in this run (guard seeds {seeds}; --guard-seeds or the matrix file's "
           "guard_seeds of 2 or more turns it on): it judged no cell.")
    assert off in section and "seed only" not in section and "no reference cell" not in section, section
    assert off.replace("'", "&#39;") in page.read_text()
    assert run.guard_seeds == seeds


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_workers_die_with_their_parent(tmp_path, mode):
    """SIGKILL the parent mid-cell: its local cluster's workers must not run on."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import json\n"
        "from distbench.launchers import cluster\n"
        "from distbench.core.config import CellSpec\n"
        "spec = CellSpec('reuters_cnn', 'multi_worker', 'custom', epochs=50, steps_per_epoch=1000,\n"
        "                data='synthetic', eval_examples=100, deadline_s=300)\n"
        "cluster.launch_cluster(spec, on_start=lambda pids: print(json.dumps(pids), flush=True))\n"
    )
    env = {**os.environ, "DISTBENCH_SPAWN": mode}   # distbench as installed, as a user has it
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        pids = json.loads(parent.stdout.readline())
        assert len(pids) == 2 and not any(gone(p) for p in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert all_gone(pids, within_s=20), f"workers {pids} outlived their parent"
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def test_a_target_run_plans_one_process_per_guard_seed_and_no_replicates():
    values = options.from_namespace(_cli_options(["--workload", "reuters_cnn", "--workload", "matmul", "--strategy",
                                                  "default", "--strategy", "virtual", "--loop", "fit", "--data",
                                                  "synthetic", "--target", "default", "--guard-seeds", "3"]))
    plan = Session.from_options(values).plan
    training = [c for c in plan if c.loop]
    assert [c.process_id for c in training] == [
        f"reuters_cnn-{s}-fit-to_accuracy_0.6-seed{k}" for s in ("default", "virtual") for k in range(3)]
    assert {c.id for c in training} == {"reuters_cnn-default-fit-to_accuracy_0.6", "reuters_cnn-virtual-fit-to_accuracy_0.6"}
    assert not any(c.is_replicate or c.is_reference for c in training)
    assert [c.id for c in plan if not c.loop] == ["matmul-default"]     # matmul does not train: unchanged


def test_run_s_exit_status_counts_every_process_it_started():
    """``run`` read only its cells' errors: a crashed overhead process, or a cell one of whose
    processes skipped where the others measured, exited 0; so did a run that measured nothing."""
    values = options.from_namespace(_cli_options(["--workload", "reuters_cnn", "--strategy", "default",
                                                  "--loop", "custom", "--guard-seeds", "0", "--no-save"]))
    session = Session.from_options(values, suite=_StoppedSuite())
    cell = session.plan[0]
    ok = {**record(cell.id, samples(10)), "config": cell.to_dict()}
    skipped = {"cell": cell.id, "status": "skipped", "reason": "no GPU", "config": cell.to_dict()}
    crashed = {"cell": f"{cell.id}-overhead", "status": "error", "reason": "worker pid 7 was killed by SIGKILL"}
    session.records = {cell.id: [ok]}
    assert session.exit_status == 0
    session.overhead = [crashed]
    assert session.exit_status == 1
    session.overhead, session.records = [], {cell.id: [ok, skipped]}
    assert session.exit_status == 1
    session.records = {cell.id: [skipped]}
    assert session.exit_status == 3   # nothing measured


def test_a_cluster_s_tasks_run_their_cells_in_one_order_however_each_was_typed(monkeypatch):
    """Two tasks of a TF_CONFIG cluster, one given ``--loop custom --loop fit``, the other
    ``--loop fit --loop custom``: they paired different cells, and every cell failed ("the
    cluster's workers were given other settings (loop ...)"). Without a cluster, as typed."""
    def plan(*loops):
        argv = ["--workload", "reuters_cnn", "--strategy", "multi_worker", "--keras", "tf_keras", "--data", "synthetic",
                "--guard-seeds", "0"] + [a for lp in loops for a in ("--loop", lp)]
        return [c.id for c in Session.from_options(options.from_namespace(_cli_options(argv))).plan]

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert plan("custom", "fit") != plan("fit", "custom")   # as typed
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["localhost:23001", "localhost:23002"]},
                                                "task": {"type": "worker", "index": 1}}))
    assert plan("custom", "fit") == plan("fit", "custom")
