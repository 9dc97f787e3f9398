"""Issue 20's fail-open paths, each shown failing closed: a partly crashed cell, runs of two
machines or two data sources, the matrix file's threshold on an interleaved verdict,
options accepted and ignored, JSON that is not one document, tracebacks for bad input."""

import csv
import io
import json

import pytest
from distbench.cli import interleaved
from distbench.cli.main import main

from tests.bench.runs import INFO, record, samples, save

CELL = "reuters_cnn-default-fit"
OTHER = "multibranch-default-fit"


def _crashed(cell=CELL):
    return {"cell": cell, "status": "error", "reason": "worker pid 7 was killed by SIGKILL",
            "config": {"workload": cell.split("-")[0], "strategy": "default", "loop": "fit"}}


@pytest.fixture
def results(tmp_path):
    """Runs 1-5: a history of the same speed (3 runs besides any two compared), three processes
    each, two cells."""
    root = tmp_path / "results"
    for seed, median in enumerate([10.0, 10.2, 10.0, 10.2, 10.0], 1):
        save(root, {c: [record(c, samples(median, seed=seed * 10 + k, spread=0.01), 0.58) for k in range(3)]
                    for c in (CELL, OTHER)})
    return root


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _check(capsys, results, run, *more, baseline="1"):
    return run_cli(capsys, "check", "--baseline", baseline, "--run", run, "--results", results, "--threshold", "0.5",
                   *more)


def test_a_cell_with_a_crashed_process_does_not_pass(capsys, results):
    # Two of three processes crashed; the one that finished is as fast as the baseline.
    path = save(results, {CELL: [_crashed(), _crashed(), record(CELL, samples(10.0, seed=99, spread=0.01), 0.58)],
                          OTHER: [record(OTHER, samples(10.0, seed=98 + k, spread=0.01), 0.58) for k in range(3)]})
    code, out, _ = _check(capsys, results, path)
    assert code == 3, out
    assert f"{CELL}: 2 of 3 processes failed (worker pid 7 was killed by SIGKILL) in B" in out
    assert out.rstrip().endswith("RESULT: not passed (exit 3)")


def test_runs_of_two_machines_are_not_checked_against_each_other(capsys, results):
    bigger = {"distbench": {**INFO["distbench"], "cpu_count": 8, "cpu_model": "Other CPU"}}
    path = save(results, {c: [record(c, samples(10.0, seed=70 + k, spread=0.01), 0.58) for k in range(3)]
                          for c in (CELL, OTHER)}, machine="x86_64-8cpu-nogpu-other0", info=bigger)
    first = sorted(results.glob("x86_64-2cpu-nogpu-test00/*.json"))[0]
    code, out, _ = _check(capsys, results, path, baseline=first)
    assert code == 3 and "OTHER MACHINE" in out and "cpu_count: 2 -> 8" in out
    assert "or check them anyway with --allow-other-machine." in " ".join(out.split())   # what lets it through
    code, out, _ = _check(capsys, results, path, "--allow-other-machine", baseline=first)
    assert code == 0 and "(allowed by --allow-other-machine)" in out and "check them anyway" not in out


def test_keras_data_is_not_checked_against_synthetic_data(capsys, results):
    keras = [record(CELL, samples(10.0, seed=80 + k, spread=0.01), 0.58) for k in range(3)]
    for r in keras:
        r["data"] = {"source": "keras"}
    path = save(results, {CELL: keras,
                          OTHER: [record(OTHER, samples(10.0, seed=90 + k, spread=0.01), 0.58) for k in range(3)]})
    code, out, _ = _check(capsys, results, path)
    assert code == 3 and "NOT COMPARABLE" in out and "data source synthetic -> keras" in out


def test_the_matrix_file_s_threshold_is_for_stored_runs_only(capsys, results, tmp_path, monkeypatch):
    """threshold = 0.6 in the matrix file: check --baseline passes an A/A pair of runs that
    the default 0.25 cannot decide, while ab and check --against keep their own 0.05."""
    (tmp_path / "distbench.toml").write_text("threshold = 0.6\n")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "check", "--baseline", "1", "--run", "2", "--results", results)
    assert code == 0, out
    seen = []
    monkeypatch.setattr(interleaved, "run_pairs", lambda values, a, b, settings, *rest: seen.append(settings) or
                        (_ for _ in ()).throw(SystemExit(0)))
    with pytest.raises(SystemExit):
        main(["ab", "--b", "TF_ENABLE_ONEDNN_OPTS=0", "--workload", "matmul"])
    with pytest.raises(SystemExit):
        main(["ab", "--b", "TF_ENABLE_ONEDNN_OPTS=0", "--workload", "matmul", "--threshold", "0.2"])
    assert [s.threshold for s in seen] == [0.05, 0.2]


@pytest.mark.parametrize("argv, refused", [
    (["--baseline", "1", "--data", "synthetic"], "--data"),
    (["--baseline", "1", "--min-pairs", "4"], "--min-pairs"),
    (["--baseline", "1", "--budget", "60"], "--budget"),
    (["--baseline", "1", "--no-lockstep"], "--no-lockstep"),
    (["--against", "HEAD", "--cell-threshold", f"{CELL}=1.0"], "--cell-threshold"),
    (["--against", "HEAD", "--run", "2"], "--run"),
])
def test_check_refuses_options_its_form_does_not_read(capsys, results, argv, refused):
    code, out, err = run_cli(capsys, "check", *argv, "--results", results)
    assert code == 2 and refused in err and "valid with" in err and len(err.strip().splitlines()) == 1


def test_check_baseline_checks_only_the_selected_cells(capsys, results):
    slow_other = save(results, {CELL: [record(CELL, samples(10.0, seed=60 + k, spread=0.01), 0.58) for k in range(3)],
                                OTHER: [record(OTHER, samples(30.0, seed=50 + k, spread=0.01), 0.58)
                                        for k in range(3)]})
    code, out, _ = _check(capsys, results, slow_other)
    assert code == 1 and f"{OTHER}: slower" in out
    code, out, _ = _check(capsys, results, slow_other, "--workload", "reuters_cnn")
    assert code == 0 and OTHER not in out


@pytest.mark.parametrize("command", [["check", "--baseline", "1", "--run", "2", "--threshold", "0.5"],
                                     ["compare", "1", "2"]])
def test_format_json_is_exactly_one_document_on_stdout(capsys, results, command):
    code, out, err = run_cli(capsys, *command, "--results", results, "--format", "json")
    document = json.loads(out)   # nothing before or after it
    if command[0] == "check":   # the verdict is in the document too, not only on stderr
        assert "RESULT: pass (exit 0)" in err and (document["result"], document["exit_status"]) == ("pass", 0)
        assert document["lines"][-1] == "RESULT: pass (exit 0)" and document["cells"]
    else:
        assert code == 0 and document["cells"] and "result" not in document


@pytest.mark.parametrize("fmt", ["csv", "markdown"])
def test_a_run_s_csv_or_markdown_is_the_only_thing_on_stdout(capsys, tmp_path, fmt):
    """The progress lines and "Saved ..." went to stdout with the table: a csv's first row
    was ``[1/3] matmul-default: ok, ...``. They go to stderr, as for json."""
    code, out, err = run_cli(capsys, "run", "--workload", "matmul", "--no-peak", "--matmul-shape", "64,16,64",
                             "--results", tmp_path / "results", "--format", fmt)
    assert code == 0 and "[1/3] matmul-default: ok" in err and "Saved " in err, out + err
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(out)))   # a header and a row a cell, nothing after them
        assert rows[0][:3] == ["cell", "workload", "strategy"] and rows[1][:3] == ["matmul-default", "matmul",
                                                                                   "default"] and len(rows) == 4, out
    else:
        assert out.startswith("| workload") and "[1/3]" not in out and "Saved" not in out, out


def test_a_plugin_that_does_not_parse_is_one_line(capsys, tmp_path, monkeypatch):
    (tmp_path / "badmodel.py").write_text("class Broken(:\n    pass\n")
    monkeypatch.chdir(tmp_path)
    for ref in ("badmodel:Broken", "badmodel.py:Broken"):
        code, _, err = run_cli(capsys, "run", "--workload", ref, "--no-save")
        assert code == 2 and "SyntaxError" in err and "badmodel.py, line 1" in err
        assert len(err.strip().splitlines()) == 1


def test_an_unbalanced_quote_in_a_side_is_one_line(capsys):
    code, _, err = run_cli(capsys, "ab", "--a", "XLA_FLAGS='--xla", "--b", "", "--workload", "matmul")
    assert code == 2 and "No closing quotation" in err and len(err.strip().splitlines()) == 1


def test_a_cell_that_crashed_in_the_baseline_is_not_a_pass(capsys, results):
    base = save(results, {CELL: [_crashed() for _ in range(3)],
                          OTHER: [record(OTHER, samples(10.0, seed=40 + k, spread=0.01), 0.58) for k in range(3)]})
    code, out, _ = _check(capsys, results, "2", baseline=base)
    assert code == 3 and "MISSING" in out and CELL in out


def test_a_run_file_that_is_not_text_is_one_line(tmp_path):
    from distbench.core.errors import UserError
    from distbench.storage.files import load

    bad = tmp_path / "0001_x_20261201_000000.json"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UserError, match="is not text"):
        load(bad)


def test_side_a_never_runs_the_working_tree_s_model_in_place_of_the_revision_s(tmp_path):
    """A model file the revision does not have stays the revision's (its worker then fails:
    the cell fails closed); untracked data the revision lacks is read from where it is."""
    from distbench.session.project import Checkout, Project

    root, tree = tmp_path / "repo", tmp_path / "worktree"
    (root / "data").mkdir(parents=True)
    tree.mkdir()
    (root / "model.py").write_text("")
    project = Project(str(root), str(root), True)
    side_a = Checkout(project, str(tree), "abc1234")
    assert side_a.place_ref(f"workload={root}/model.py:Net") == f"workload={tree}/model.py:Net"
    assert side_a.place_ref(f"{root}/model.py:Net") == f"{tree}/model.py:Net"
    assert side_a.place_ref("workload=model:Net") == "workload=model:Net"      # a module: imported in its folder
    assert side_a.place(str(root / "data")) == str(root / "data")


def test_ab_that_saved_nothing_it_measured_says_so(capsys, monkeypatch):
    """ab in a non-chief task of a TF_CONFIG cluster measures and leaves saving to the chief;
    it said nothing of it, where ``run`` says "Not saved"."""
    from distbench.render import run_table
    from distbench.session.interleave import PairedCell
    from distbench.session.paired_run import PairedRun

    def measured(values, a, b, settings, *rest):   # one cell measured (here: stopped), saved nowhere
        return PairedRun(a, b, [PairedCell(CELL, settings.threshold, None, interrupted=True, stopped="x")], None)

    monkeypatch.setattr(interleaved, "run_pairs", measured)
    main(["ab", "--b", "TF_ENABLE_ONEDNN_OPTS=0", "--workload", "matmul"])
    assert run_table.NOT_SAVED in capsys.readouterr().out
    main(["ab", "--b", "TF_ENABLE_ONEDNN_OPTS=0", "--workload", "matmul", "--no-save"])
    assert run_table.NOT_SAVED not in capsys.readouterr().out
