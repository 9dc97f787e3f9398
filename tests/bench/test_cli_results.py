"""compare, check, report and list on fabricated stored runs."""

import csv
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from distbench.cli.main import main
from distbench.storage.machine import machine_id

from tests.bench.runs import INFO, record, samples, save

CELL = "reuters_cnn-default-fit"


@pytest.fixture
def results(tmp_path):
    """Runs 1-5: the same speed within 5% (a history: 3 runs besides any two compared); run 6:
    twice as slow; run 7: other cells only."""
    root = tmp_path / "results"
    for seed, median in enumerate([10.0, 10.5, 10.0, 10.5, 10.0], 1):
        save(root, {CELL: [record(CELL, samples(median, seed=seed, spread=0.01), 0.58)]})
    save(root, {CELL: [record(CELL, samples(20.0, seed=6, spread=0.01), 0.58)]})
    save(root, {"matmul-default": [record("matmul-default", samples(100.0, seed=7))]})
    return str(root)


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_shows_verdicts_with_the_history_behind_them(capsys, results):
    code, out, _ = run_cli(capsys, "compare", "1", "6", "--results", results)
    assert code == 0
    assert "Same machine fingerprint." in out
    lines = out.splitlines()
    workload, _, rest = CELL.partition("-")   # rows grouped under their workload, within 120 columns
    at = lines.index(f"{workload} (test: accuracy):")
    assert lines[at + 1].startswith(rest + " ") and lines[at + 1].split()[-2:] == ["runs", "slower"]
    assert "4 runs" in lines[at + 1] and "2.0" in lines[at + 1] and max(map(len, lines)) <= 120   # not runs 1 and 6
    assert "not compared (1): only in B: matmul-default" not in out   # run 6 has only CELL


def test_check_passes_a_a_fails_a_slowed_run_and_says_undecided_in_between(capsys, results):
    # A/A: B/A ~1.05 with +-26% of history noise: inside a 50% band, not inside 25%.
    code, out, _ = run_cli(capsys, "check", "--baseline", "1", "--run", "2", "--results", results, "--threshold", "0.5")
    assert code == 0 and "PASS: 1 cell of" in out
    code, out, _ = run_cli(capsys, "check", "--baseline", "1", "--run", "2", "--results", results)
    assert code == 3 and "UNDECIDED: 1 cell could not be judged" in out and "NOT PASSED (exit 3)" in out
    code, out, _ = run_cli(capsys, "check", "--baseline", "1", "--run", "2", "--results", results, "--allow-undecided")
    assert code == 3 and "NOT PASSED (exit 3): no cell was decided" in out   # allowed, but nothing decided: no pass
    code, out, _ = run_cli(capsys, "check", "--baseline", "1", "--run", "6", "--results", results)
    assert code == 1
    assert "FAIL" in out and f"{CELL}: slower, median" in out


def test_check_per_cell_threshold_override(capsys, results):
    code, _, _ = run_cli(capsys, "check", "--baseline", "1", "--run", "6", "--results", results)
    assert code == 1                                   # 2x slower: a regression at the default 25%
    code, out, _ = run_cli(capsys, "check", "--baseline", "1", "--run", "6", "--results", results,
                           "--cell-threshold", f"{CELL}=200%")
    assert code == 0 and "RESULT: pass (exit 0)" in out   # within this cell's own 200%
    code, out, _ = run_cli(capsys, "check", "--baseline", "1", "--run", "6", "--results", results, "--threshold", "200%")
    assert code == 0 and "RESULT: pass (exit 0)" in out   # 200% typed as a percentage; "2" is refused


@pytest.mark.parametrize(
    "argv, message",
    [
        (["compare", "1", "9"], "Run number 9 does not exist"),
        (["compare", "6", "latest~1"], "A 6 and B latest~1 are the same run"),
        (["check", "--baseline", "7"], "--baseline 7 and --run latest are the same run"),   # passed: all "same"
        (["compare", "1", "7"], "have no cells in common"),
        (["check", "--baseline", "1", "--cell-threshold", "reuters=x"], "Bad --cell-threshold reuters 'x': give a fraction"),
        (["check", "--baseline", "1", "--cell-threshold", "0.4"], "Bad --cell-threshold '0.4': use CELL=X"),
        (["check", "--baseline", "1", "--run", "2", "--cell-threshold", "nope=0.3"], "names cells in neither run: nope"),
        (["compare", "1", "2", "--threshold", "-1"], "--threshold must be > 0 and finite"),
        (["compare", "1", "2", "--threshold", "5"], "--threshold 5 reads as 500%: give a fraction (0.05) or a percentage (5%)"),
        (["check", "--against", "no-such-rev", "--workload", "matmul"], "Unknown git revision 'no-such-rev'"),
        (["ab", "--b", "--no-such-option 3", "--workload", "matmul"], "Bad side options '--no-such-option 3'"),
        # Named with its side and all it was given (it named the leftover words only).
        (["ab", "--b", "X=1 --no-such 3", "--workload", "matmul"], "Side B (X=1 --no-such 3): Bad side options "
                                                                   "'--no-such 3'"),
        (["compare", "latest~9", "1"], "Run 'latest~9' does not exist"),
        (["check", "--against", ""], "check --against needs a git revision"),
        (["ab", "--b", "", "--budget", "-1", "--workload", "matmul"], "--budget must be > 0 seconds"),
        (["ab", "--b", "--global-batch 0", "--workload", "reuters_cnn", "--strategy", "default", "--loop", "custom"],
         "Side B (--global-batch 0): Global batch (--global-batch) must be"),
        (["ab", "--a", "--epochs -1", "--b", "", "--workload", "reuters_cnn", "--strategy", "default"],
         "Side A (--epochs -1): "),
        (["check", "--baseline", "1", "--run", "4", "--cell-threshold", f"{CELL}=-1"], f"--cell-threshold {CELL} must be > 0"),
        (["check", "--baseline", "1", "--run", "4", "--cell-threshold", f"{CELL}=inf"], "must be > 0 and finite"),
        (["check", "--baseline", "1", "--run", "4", "--cell-threshold", f"{CELL}=0.3", "--cell-threshold", f"{CELL}=0.5"],
         f"--cell-threshold gives {CELL} twice (0.3 and 0.5); give it once."),
        (["check", "--baseline", "1", "--run", "4", "--accuracy-tolerance", "x"], "Bad --accuracy-tolerance 'x'"),
        (["check", "--baseline", "1", "--run", "4", "--accuracy-tolerance", "-1"], "--accuracy-tolerance must be >= 0"),
        # 5 typed for 5%: a check that lost half its AUC passed, exit 0.
        (["check", "--baseline", "1", "--run", "4", "--accuracy-tolerance", "5"], "--accuracy-tolerance 5 is not below "
         "1, and accuracy is a share from 0 to 1: no loss of it could fail the check; give a fraction (0.05) or a "
         "percentage (5%)."),
        (["bisect", "HEAD", "HEAD", "--workload", "matmul"], "are the same commit"),
        (["compare", "1", "2", "--threshold", "nan"], "--threshold must be > 0 and finite"),
        (["plan", "--detect", "nan"], "--detect must be > 0 and finite"),
        (["plan", "--detect", "10"], "--detect 10 reads as 1000%"),
        (["plan", "--detect", "-5%"], "--detect must be > 0 and finite, a fraction (0.05) or a percentage (5%); received '-5%'"),
        (["plan", "--detect", "20%", "--workload", "nope"], "Unknown workload 'nope' for plan"),
        (["run", "--workload", "matmul", "--matmul-shape", "-1,10,10"], "Bad matmul shape '-1,10,10': give"),
        # 4 x 10^12 bytes: its worker would be killed by the kernel, or take others with it.
        (["run", "--workload", "matmul", "--matmul-shape", "1000000,1000000,1"],
         "Matmul shape 1000000,1000000,1 needs 3725.3 GiB for its three float32 matrices, more than this machine's "),
        (["run", "--workload", "reuters_cnn", "--steps-per-execution", "100"],   # every fit cell failed, after training
         "--steps-per-execution 100 leaves fit no steady call in 2 x 100 training steps (a cold-start call and the "
         "warm-up's come first: it needs 3 calls); give a smaller one or more steps."),
        # The pairs run inside the cell's deadline: every fit cell timed out after training.
        (["run", "--workload", "reuters_cnn", "--timing-cost-pairs", "1000", "--deadline", "300"],
         "--timing-cost-pairs 1000 runs 2000 fit calls of at least 0.3 s each after the cell, in its worker, past its "
         "--deadline 300 s: give fewer pairs or a longer deadline."),
        (["run", "--workload", "reuters_cnn", "--max-steps", "500"],   # without --target it was ignored
         "--max-steps bounds a time-to-target run; give --target too (without one, a run trains --epochs x "
         "--steps-per-epoch steps)."),
        (["run", "--workload", "reuters_cnn", "--target", "accuracy=0.5", "--max-steps", "3"],
         "Max steps (--max-steps) must be an integer >= 7; received 3."),
        (["run", "--workload", "reuters_cnn", "--strategy", "multi_worker", "--workers", "3"],
         "Global batch 32 is not divisible by the 3 local workers of multi_worker (--workers)"),
        (["run", "--workload", "reuters_cnn", "--target", "accuracy=2"],
         "Bad target 'accuracy=2': accuracy is a share from 0 to 1, so a target of 2 is never reached"),
        (["run", "--workload", "reuters_cnn", "--target", "accuracy=-1"], "a target of -1 is at once reached"),
        (["run", "--workload", "reuters_cnn", "--target", "mae<=-1"], "mae is never below 0"),
        (["run", "--workload", "reuters_cnn", "--target", "loss>=2"],
         "Bad target 'loss>=2': loss is better lower, so its target is reached at or below a value: give loss<=2"),
        (["ab", "--b", "--matmul-shape -1,10,10", "--workload", "matmul"], "Bad matmul shape '-1,10,10': give"),
        (["ab", "--b", "--matmul-shape 1000000,1000000,1", "--workload", "matmul"],
         "Side B (--matmul-shape 1000000,1000000,1): Matmul shape 1000000,1000000,1 needs 3725.3 GiB"),
        (["ab", "--b", "--devices 4", "--workload", "reuters_cnn", "--strategy", "default"],
         "Side B (--devices 4): no cell of this selection reads --devices (only virtual does): both sides would"),
        (["ab", "--b", "--workers 4", "--workload", "reuters_cnn", "--strategy", "virtual"],
         "reads --workers (only multi_worker, parameter_server do)"),
        # Only fit reads --steps-per-execution, and only a time-to-target cell --max-steps: an A/A that passed.
        (["ab", "--b", "--steps-per-execution 10", "--workload", "reuters_cnn", "--loop", "custom",
          "--loop", "train_on_batch"], "Side B (--steps-per-execution 10): no cell of this selection reads "
         "--steps-per-execution (only the fit loop and loops of your own do): both sides would measure the same cells."),
        (["ab", "--b", "--max-steps 50", "--workload", "reuters_cnn", "--loop", "fit"],
         "reads --max-steps (only time-to-target cells do, which ab and check --against do not run)"),
        (["ab", "--b", "--epochs 3", "--workload", "matmul"], "reads --epochs (only training cells do, not matmul)"),
        (["ab", "--a", "--loop fit", "--b", "--loop custom", "--workload", "reuters_cnn"],
         "--loop selects the cells both sides run (give it outside --a and --b); to compare loops or strategies with "
         "each other, `distbench run --loop X --loop Y` measures each, and `distbench tune` ranks"),
        (["plan", "--detect", "20%", "--strategy", "nope"], "Unknown strategy 'nope'. Known: default"),
        (["plan", "--detect", "20%", "--loop", "nope"], "Unknown loop 'nope'. Known: fit"),
        (["run", "--workload", "matmul", "--deadline", "inf"], "Deadline (--deadline) must be positive seconds, at most 2.592e+06 (30 days); received inf"),
        (["run", "--workload", "matmul", "--deadline", "nan"], "Deadline (--deadline) must be positive seconds, at most 2.592e+06 (30 days); received nan"),
        # A malformed target with no training cell selected: passed over, the run went ahead (exit 0)
        (["run", "--workload", "matmul", "--target", "garbage!!"], "Bad target 'garbage!!': give METRIC=VALUE"),
        # Python's waits overflow past ~9.2e9 s: a traceback once the cell had started
        (["run", "--workload", "matmul", "--deadline", "1e10"], "Deadline (--deadline) must be positive seconds, at most 2.592e+06 (30 days); received 10000000000.0"),
        (["run", "--workload", "reuters_cnn", "--seed", "-1"], "Seed (--seed) must be an integer >= 0; received -1"),
        # NumPy's seeds stop below 2**32: every cell of such a run failed (exit 1), stored as the latest run.
        (["run", "--workload", "reuters_cnn", "--seed", "4294967296"],
         "Seed (--seed) must be an integer from 0 to 2147483647; received 4294967296"),
        (["run", "--workload", "reuters_cnn", "--init-seed", "4294967295"], "Init seed (--init-seed) must be an integer from 0 to"),
        (["run", "--workload", "reuters_cnn", "--prefetch", "\u00b2"], "Bad prefetch '\u00b2': give auto"),   # ValueError
        (["compare", "\u00b2", "1"], "Bad run reference '\u00b2': give a file path, a run number"),   # ValueError
        (["run", "--workload", "reuters_cnn", "--warmup-steps", "1000", "--steps-per-epoch", "30"],
         "training steps leave no steady-state step after the cold start and 1000 warm-up steps"),
    ],
)
def test_bad_references_and_options_are_one_line_exit_2(capsys, results, argv, message):
    code, _, err = run_cli(capsys, *argv, "--results", results)
    assert code == 2 and message in err and err.count("\n") == 1


def test_a_local_cluster_beyond_this_machine_s_memory_is_refused_for_run_and_an_ab_side(capsys, results):
    """``--workers 1000`` started a thousand TensorFlow processes (each holds about 200 MiB of
    its own here), until the kernel killed them, or others; a side's workers that do not
    divide the batch failed in each worker."""
    import psutil

    workers = psutil.virtual_memory().total // 2**27   # 128 MiB each would already fill the memory
    code, _, err = run_cli(capsys, "run", "--workload", "reuters_cnn", "--strategy", "parameter_server", "--workers",
                           str(workers), "--results", results)
    assert code == 2 and err.count("\n") == 1, err
    assert f"parameter_server's {workers + 2} local processes (--workers, --ps) need at least " in err
    assert "more than this machine's" in err
    code, _, err = run_cli(capsys, "ab", "--b", f"--workers {workers}", "--workload", "reuters_cnn", "--strategy",
                           "multi_worker", "--scaling", "weak", "--results", results)
    assert code == 2 and f"Side B (--workers {workers}): multi_worker's {workers} local processes (--workers)" in err
    code, _, err = run_cli(capsys, "ab", "--b", "--workers 3", "--workload", "reuters_cnn", "--strategy",
                           "multi_worker", "--results", results)
    assert code == 2 and "Side B (--workers 3): Global batch 32 is not divisible by the 3 local workers" in err


def test_truncated_stored_file_is_refused_and_left_alone(capsys, results, tmp_path):
    bad = tmp_path / "results" / "0009_dead_x.json"
    bad.write_text('{"machine_info": {"cpu": ')
    code, _, err = run_cli(capsys, "compare", str(bad), "1", "--results", results)
    assert code == 2 and "is not valid JSON" in err
    assert bad.read_text() == '{"machine_info": {"cpu": '


def test_a_corrupt_run_in_the_history_is_named_once(capsys, results):
    (machine,) = [p for p in Path(results).iterdir() if p.is_dir()]
    (machine / "0008_dead_x.json").write_text('{"machine_info": {"cpu": ')
    code, out, err = run_cli(capsys, "compare", "1", "6", "--results", results)
    assert code == 0 and "slower" in out
    assert err.count("skipped in the history:") == 1 and "0008_dead_x.json" in err, err


def test_a_run_file_of_the_wrong_shape_in_the_history_is_named_not_a_traceback(capsys, results):
    """Valid JSON with a schema version and nothing else: compare, check and report read
    every run of the machine's history, and each crashed on it (KeyError: 'benchmarks')."""
    (machine,) = [p for p in Path(results).iterdir() if p.is_dir()]
    (machine / "0008_dead_x.json").write_text('{"distbench": {"schema_version": 1}}')
    code, out, err = run_cli(capsys, "compare", "1", "6", "--results", results)
    assert code == 0 and "slower" in out
    assert "0008_dead_x.json does not read as a run of schema version 1 (KeyError: 'benchmarks')" in err, err
    code, _, err = run_cli(capsys, "compare", str(machine / "0008_dead_x.json"), "1", "--results", results)
    assert code == 2 and err.count("\n") == 1 and "does not read as a run" in err


def test_a_results_folder_that_cannot_be_read_is_one_line(capsys, results, monkeypatch):
    """(As root every folder reads: the refusal of the operating system is injected.)"""
    real = Path.iterdir

    def refused(self):
        if self.parent == Path(results):
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", refused)
    code, _, err = run_cli(capsys, "compare", "1", "6", "--results", results)
    assert code == 2 and err.count("\n") == 1 and "Cannot read the results folder " in err and "Permission denied" in err


def test_a_matrix_file_threshold_of_0_is_refused_not_read_as_the_default(capsys, results, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[tool.distbench]\nthreshold = 0\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "compare", "1", "6", "--results", results)
    assert code == 2 and "pyproject.toml: threshold must be > 0" in err and err.count("\n") == 1
    (tmp_path / "pyproject.toml").write_text("[tool.distbench]\nthreshold = 25\n")   # 25%, typed without its sign
    code, _, err = run_cli(capsys, "compare", "1", "6", "--results", results)
    assert code == 2 and "pyproject.toml: threshold 25 reads as 2500%" in err and err.count("\n") == 1
    assert err.rstrip().endswith('In the file a percentage is quoted: threshold = "25%".')
    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\nthreshold = "300%"\n')
    assert run_cli(capsys, "compare", "1", "6", "--results", results)[0] == 0


@pytest.mark.parametrize("fmt", ["csv", "json", "markdown"])
def test_machine_readable_formats(capsys, results, fmt):
    code, out, err = run_cli(capsys, "compare", "1", "6", "--results", results, "--format", fmt)
    assert code == 0
    # Beside a csv or Markdown table, on stderr: the runs and their machines (json has them
    # as fields); a table of two machines' runs had read as one machine's.
    context = err.splitlines()[:3] if fmt != "json" else []
    assert fmt == "json" or (context[0].startswith("A: ") and context[2] == "Same machine fingerprint."), err
    if fmt == "csv":   # numbers, as the JSON's (it was the table's text: "2.00 [1.80, 2.22]", "10.0 ms")
        (row,) = csv.DictReader(io.StringIO(out))
        assert row["cell"] == CELL and row["verdict"] == "slower", row
        assert float(row["ratio_low"]) < float(row["ratio"]) < float(row["ratio_high"]) and 1.8 < float(row["ratio"]) < 2.2
        assert float(row["median_b"]) == pytest.approx(2 * float(row["median_a"]), rel=0.1)
    elif fmt == "json":
        data = json.loads(out)
        assert data["cells"][0]["verdict"] == "slower" and data["machine_diff"] == []
    else:
        assert out.startswith("| cell")


def test_report_writes_markdown_and_charts(capsys, results, tmp_path):
    out_dir = tmp_path / "report"
    code, out, _ = run_cli(capsys, "report", "--run", "6", "--results", results, "--out", str(out_dir))
    assert code == 0 and "Wrote" in out and (out_dir / "report.html").is_file()
    text = (out_dir / "report.md").read_text()
    assert "## Step time per strategy and loop" in text and "report.html" in text
    # The doubling (from a level of about 10.2 ms: +95-99%) is a step, and compare's judge calls it slower: a regression, named with its runs.
    assert re.search(r"- \*\*regression\*\* reuters_cnn-default-fit: \+9\d\.\d% from run 0005 \(abc12345\) to "
                     r"run 0006 \(abc12345\): compare says slower", text), text
    for png in ("step_time.png", "throughput.png", "accuracy.png"):
        assert (out_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_report_goes_beside_the_results_folder_from_any_folder(capsys, results, tmp_path, monkeypatch):
    """From a project's sub-folder it was written into that sub-folder (reports/ under the
    folder the command ran in), while the results came from the project's top."""
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    code, out, _ = run_cli(capsys, "report", "--run", "6", "--results", results)
    (machine,) = os.listdir(results)
    assert code == 0 and (Path(results).parent / "reports" / machine / "report.html").is_file(), out
    assert not (tmp_path / "sub" / "reports").exists()


def test_a_report_that_cannot_be_written_is_one_line(capsys, results, tmp_path):
    """The folder exists, but report.md in it is a folder (as a read-only folder would fail):
    a traceback (IsADirectoryError) after the charts were drawn."""
    (tmp_path / "report" / "report.md").mkdir(parents=True)
    code, out, err = run_cli(capsys, "report", "--run", "6", "--results", results, "--out", str(tmp_path / "report"))
    assert code == 2 and err.count("\n") == 1 and f"Cannot write the report into {tmp_path / 'report'}: " in err, err


def test_list_shows_stored_runs_by_machine_within_120_columns(capsys, results):
    code, out, _ = run_cli(capsys, "list", "--results", results)
    assert code == 0 and f"Stored runs in {results}/: 7, in 1 machine folder" in out
    machine = os.listdir(results)[0]
    assert re.search(rf"^  {machine}  7 runs, latest 0007_abc12345_\S+\.json(  \(this machine\))?$", out, re.M), out
    assert max(len(line) for line in out.splitlines()) <= 120


def test_a_revision_in_a_repository_without_commits_says_there_are_none(tmp_path, monkeypatch, capsys):
    """`git init` and no commit yet: "Unknown git revision 'HEAD'" sent the user looking for a typo."""
    import subprocess

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    for argv in (["check", "--against", "HEAD"], ["bisect", "HEAD~1", "HEAD"]):
        code, _, err = run_cli(capsys, *argv, "--workload", "matmul", "--no-save")
        assert code == 2 and err.startswith(f"distbench: error: {tmp_path} has no commits yet, so there is no "
                                            "revision 'HEAD") and err.count("\n") == 1, err
        assert err.endswith("' to measure against: commit your project first (git add; git commit).\n"), err


def test_a_revision_beyond_a_shallow_clone_s_history_says_so(tmp_path, monkeypatch, capsys):
    """A CI checkout of depth 1: "Unknown git revision 'HEAD~1'" read as a typo."""
    import subprocess

    env = {**os.environ, "GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@x", "GIT_COMMITTER_NAME": "u",
           "GIT_COMMITTER_EMAIL": "u@x"}
    origin = tmp_path / "origin"
    origin.mkdir()
    for k in (1, 2):
        (origin / "model.py").write_text(f"WIDTH = {k}\n")
        for args in (["init", "-q"] if k == 1 else [], ["add", "-A"], ["commit", "-qm", f"c{k}"]):
            if args:
                subprocess.run(["git", *args], cwd=origin, check=True, env=env)
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{origin}", str(tmp_path / "ci")], check=True, env=env)
    monkeypatch.chdir(tmp_path / "ci")
    code, _, err = run_cli(capsys, "check", "--against", "HEAD~1", "--workload", "matmul", "--no-save")
    assert code == 2 and err.count("\n") == 1, err
    assert "a shallow clone whose history stops short of it: fetch the history first (git fetch --unshallow" in err


def test_list_names_the_earlier_runs_that_cannot_be_read(capsys, results):
    """A run cut short in the middle of a folder's history: compare and check skip it (and
    say so), while list counted it among the runs with no word of it."""
    (machine,) = os.listdir(results)
    runs = sorted(Path(results, machine).iterdir())
    for path in runs[2:4]:
        path.write_text(path.read_text()[:100])
    newer = json.loads(runs[1].read_text())   # not truncated: a newer distbench's (it read as "truncated or corrupted")
    newer["distbench"]["schema_version"] = 99
    runs[1].write_text(json.dumps(newer))
    code, out, _ = run_cli(capsys, "list", "--results", results)
    said = " ".join(out.split())
    assert code == 0 and (f"3 EARLIER RUNS CANNOT BE READ (compare and check skip them in the history and say "
                          f"why): {runs[1].name}, {runs[2].name}, {runs[3].name}") in said, out
    assert "ITS LATEST" not in out and max(len(line) for line in out.splitlines()) <= 120


def test_list_says_when_a_folder_s_latest_run_is_truncated_or_interrupted(capsys, results):
    """A run file cut short (a full disk, a copy that stopped): compare, check and report
    refuse `latest`, while list named it as the latest with no word of it."""
    (machine,) = os.listdir(results)
    latest = sorted(Path(results, machine).iterdir())[-1]
    whole = latest.read_text()
    latest.write_text(whole[: len(whole) // 2])
    code, out, _ = run_cli(capsys, "list", "--results", results)
    assert code == 0 and re.search(r"^    ITS LATEST CANNOT BE READ: it is not valid JSON \(", out, re.M), out
    assert "truncated or corrupted" in out and max(len(line) for line in out.splitlines()) <= 120
    code, _, err = run_cli(capsys, "report", "--results", results, "--out", str(Path(results).parent / "rep"))
    assert code == 2 and err.count("\n") == 1 and err.rstrip().endswith("Or report an earlier run: --run N."), err
    document = json.loads(whole)
    document["distbench"]["interrupted"] = True
    latest.write_text(json.dumps(document))
    code, out, _ = run_cli(capsys, "list", "--results", results)
    assert code == 0 and "    ITS LATEST WAS INTERRUPTED: it stopped before every cell of its plan had run" in out, out
    latest.write_text(whole)
    code, out, _ = run_cli(capsys, "list", "--results", results)
    assert code == 0 and "ITS LATEST" not in out


def test_run_refuses_an_unwritable_results_folder_before_running(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    code, out, err = run_cli(capsys, "run", "--workload", "matmul", "--results", str(blocker / "sub"))
    assert code == 2 and "Cannot write results under" in err and "[1/" not in out
    assert blocker.read_text() == "keep me"


def test_run_refuses_a_results_folder_that_is_a_broken_link_before_running(capsys, tmp_path):
    """results -> a volume not mounted: the run was measured, then not saved ("File exists")."""
    (tmp_path / "results").symlink_to(tmp_path / "not mounted" / "results")
    code, out, err = run_cli(capsys, "run", "--workload", "matmul", "--results", str(tmp_path / "results" / "sub"))
    assert code == 2 and "[1/" not in out, out
    assert (f"Cannot write results under '{tmp_path / 'results' / 'sub'}': {tmp_path / 'results'} is a symbolic link to "
            f"{tmp_path / 'not mounted' / 'results'}, which does not exist") in err, err
    assert err.count("\n") == 1 and not (tmp_path / "not mounted").exists()


def test_run_refuses_a_machine_folder_it_cannot_save_into_before_running(capsys, tmp_path):
    """results/ writable, but this machine's folder in it a file (or another user's): the run
    was measured, then not saved."""
    from distbench.storage import machine

    if not machine.no_gpu_possible():
        pytest.skip("this machine's id needs TensorFlow here: the check is left to the save")
    mine = tmp_path / machine.this_machine_id()
    mine.write_text("keep me")
    code, out, err = run_cli(capsys, "run", "--workload", "matmul", "--results", str(tmp_path))
    assert code == 2 and "this machine's folder there is not a folder" in err and "[1/" not in out
    assert mine.read_text() == "keep me"


def test_check_without_history_is_undecided_and_fails_closed(capsys, tmp_path):
    root = str(tmp_path / "young")
    save(root, {CELL: [record(CELL, samples(m, seed=i, spread=0.02)) for i, m in enumerate([10, 10.2, 9.9])]})
    save(root, {CELL: [record(CELL, samples(m, seed=9 + i, spread=0.02)) for i, m in enumerate([30, 31, 29])]})
    code, out, _ = run_cli(capsys, "check", "--baseline", "1", "--run", "2", "--results", root)
    assert code == 3   # even 3x slower: two runs are no evidence of this machine's between-run noise
    assert "no interval: fewer than the stored runs needed" in out
    (row,) = [line for line in out.splitlines() if line.startswith(CELL.partition("-")[2] + " ")]
    assert "<3 runs" in row and " none " not in row, row   # the history column: too few, not none
    # A third run, 13.5x slower than the second: the noise would be half its own step, B/A 13.5 [0.00, 59330].
    save(root, {CELL: [record(CELL, samples(m, seed=19 + i, spread=0.02)) for i, m in enumerate([405, 418, 392])]})
    code, out, _ = run_cli(capsys, "check", "--baseline", "2", "--run", "3", "--results", root)
    assert code == 3 and "no interval: fewer than the stored runs needed to know this cell's noise (3 measured as B " \
                         "was, besides A and B)" in out, out


def test_check_baseline_after_an_interleaved_run_checks_the_latest_plain_one(capsys, results):
    """After a `check --against` (stored as the latest run), `check --baseline 1` refused
    it: the latest run was nearly always an interleaved one. It now checks the latest plain
    run; an interleaved run named is refused, naming plain runs to give (an interrupted
    one had been among them)."""
    from pathlib import Path

    from distbench.storage.files import Storage
    from tests.bench.runs import MACHINE, document

    cut = document({CELL: [record(CELL, samples(10.0, seed=8))]})
    cut["distbench"]["interrupted"] = True
    Storage(results).save(cut, MACHINE)   # run 8
    doc = document({f"{CELL}@A": [record(CELL, samples(10.0, seed=9))], f"{CELL}@B": [record(CELL, samples(10.0))]})
    doc["distbench"]["interleaved"] = {"a": {}, "b": {}, "cells": {}}
    Storage(results).save(doc, MACHINE)   # run 9
    before = {p: p.read_bytes() for p in Path(results).glob("*/*.json")}
    code, out, err = run_cli(capsys, "check", "--baseline", "1", "--results", results)
    assert code == 1 and "B INTERRUPTED" in out and "B: x86_64-2cpu-nogpu-test00/0008_" in out, out + err
    for argv in (["--run", "latest"], ["--run", "9"]):
        code, _, err = run_cli(capsys, "check", "--baseline", "1", *argv, "--results", results)
        assert code == 2 and err.count("\n") == 1
        assert f"--run {argv[1]} is run 9, an interleaved run (`check --against` or `ab`" in err
        assert err.rstrip().endswith(f"(the latest of machine {MACHINE}: 0003, 0004, 0005, 0006, 0007).")   # not 0008
    assert {p: p.read_bytes() for p in Path(results).glob("*/*.json")} == before
    # compare's latest counts plain runs too (`compare latest~1 latest` after an ab run was
    # refused: no cells in common); the interleaved run is still named by its number.
    code, out, err = run_cli(capsys, "compare", "latest~2", "latest", "--results", results)   # run 7 is matmul's
    assert code == 0 and "A: x86_64-2cpu-nogpu-test00/0006_" in out and "B: x86_64-2cpu-nogpu-test00/0008_" in out, \
        out + err
    code, _, err = run_cli(capsys, "compare", "8", "9", "--results", results)
    assert code == 2 and "have no cells in common" in err, err
    # Past the plain runs, latest~N had counted every run: another run, or the newest itself.
    code, _, err = run_cli(capsys, "compare", "latest~8", "latest", "--results", results)
    assert code == 2 and err == (f"distbench: error: Run 'latest~8' does not exist: machine {MACHINE} has 8 stored "
                                 "run(s) that are not interleaved, which latest~N counts (name an ab or check "
                                 "--against run by its number).\n"), err
    # A run after the latest plain one that cannot be read may be the one to check: refused, not passed over.
    (eighth,) = Path(results).glob("*/0008_*.json")
    eighth.write_text(eighth.read_text()[:300])
    code, out, err = run_cli(capsys, "check", "--baseline", "1", "--results", results)
    assert code == 2 and err.startswith(f"distbench: error: {eighth} is not valid JSON") and err.count("\n") == 1, err


def test_plan_without_a_results_folder_says_so(capsys, tmp_path):
    code, out, err = run_cli(capsys, "plan", "--detect", "10%", "--results", str(tmp_path / "nowhere"))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"No results folder '{tmp_path / 'nowhere'}': plan reads the interleaved runs stored there" in err


def test_the_noise_comes_only_from_runs_that_measured_the_cell_the_same_way(capsys, tmp_path):
    """Ten steady runs of another batch under the same cell id narrowed the interval of two
    batch-32 runs from undecided to a pass (the noise was pooled by cell id alone)."""
    root = str(tmp_path / "results")

    def batch(global_batch, median, seed):
        r = record(CELL, samples(median, seed=seed, spread=0.01), 0.58)
        r["config"]["global_batch"] = global_batch
        return {CELL: [r]}

    for seed, median in enumerate([10.0, 13.0, 9.0, 12.5], 1):        # batch 32: 25-40% apart
        save(root, batch(32, median, seed))
    for k in range(10):                                               # batch 64: within 0.5%
        save(root, batch(64, 20.0 * (1 + 0.005 * (-1) ** k), 100 + k))
    save(root, batch(32, 10.0, 200))                                  # run 15
    save(root, batch(32, 10.5, 201))                                  # run 16
    code, out, _ = run_cli(capsys, "check", "--baseline", "15", "--run", "16", "--results", root)
    assert code == 3 and "UNDECIDED" in out and "RESULT: not passed (exit 3)" in out, out
    line = next(l for l in out.splitlines() if l.startswith(CELL.partition("-")[2] + " "))
    assert "4 runs" in line, line              # the six batch-32 runs but runs 15 and 16, the two compared; not 16


def _reader_gone(*argv, cwd=None):
    """``distbench ARGV | head -0``: the reader has left before the command writes."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONUNBUFFERED")}   # buffered, as a shell's
    proc = subprocess.Popen([sys.executable, "-m", "distbench", *argv], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read()
    return proc.wait(timeout=600), err


def test_a_reader_that_leaves_changes_no_exit_status(results):
    """`distbench compare 1 6 | head -1`: BrokenPipeError's traceback and exit 1, a
    regression's status, for a comparison that exits 0."""
    for argv in (["compare", "1", "6"], ["plan", "--detect", "20%"], ["check", "--baseline", "1", "--run", "6"]):
        code, err = _reader_gone(*argv, "--results", results)   # plan and check's lines: printed, not flushed
        assert code == (1 if argv[0] == "check" else 0) and "Traceback" not in err, (argv, err[-2000:])
        assert "BrokenPipeError" not in err, (argv, err[-2000:])   # exit 120 at Python's own flush had said so


@pytest.mark.slow
def test_a_run_whose_reader_left_is_saved(tmp_path):
    """`distbench run ... | head -1` lost the exit status to a traceback after the save; a
    check --against lost its measured run (its progress lines come before the save)."""
    code, err = _reader_gone("run", "--workload", "matmul", "--matmul-shape", "64,64,64", "--matmul-repeats", "2",
                             "--no-peak", "--results", str(tmp_path / "results"))
    assert code == 0 and "Traceback" not in err, err[-2000:]
    assert len(list((tmp_path / "results").glob("*/*.json"))) == 1


def test_check_baseline_s_table_says_less_accurate_and_the_tolerance_of_a_lower_metric_as_a_value(capsys, tmp_path):
    """A cell whose MAE doubled read `undecided` in check's table (the speed's verdict alone),
    and its FAIL line said "more than the tolerance 0.5" where the limit was 0.5 of A's MAE."""
    root = tmp_path / "results"

    def mae_record(mae, seed):
        r = record(CELL, samples(10.0, seed=seed, spread=0.01))
        r["accuracy"] = {"train": mae, "test": {"examples": 100, "mae": mae}, "guard_metric": "mae",
                         "guard_direction": "lower"}
        return r

    save(root, {CELL: [mae_record(48.0, 1)]})
    save(root, {CELL: [mae_record(96.0, 2)]})
    code, out, _ = run_cli(capsys, "check", "--baseline", "1", "--run", "2", "--results", str(root),
                           "--accuracy-tolerance", "50%")
    assert code == 1, out
    (row,) = [line for line in out.splitlines() if line.startswith(CELL.partition("-")[2] + " ")]
    assert row.split()[-2:] == ["LESS", "ACCURATE"], out
    flat = " ".join(out.split())
    assert "test mae 48.000 -> 96.000 (worse by 48.000, more than the tolerance 0.5 of A's value, 24.000)" in flat, out
    code, out, _ = run_cli(capsys, "check", "--baseline", "1", "--run", "2", "--results", str(root),
                           "--accuracy-tolerance", "50%", "--format", "json")
    (cell,) = json.loads(out)["cells"]
    assert cell["less_accurate"] is True
    # compare read the speed's verdict alone ("faster" for a run that learned worse), at check's tolerance
    code, out, _ = run_cli(capsys, "compare", "1", "2", "--results", str(root))
    (row,) = [line for line in out.splitlines() if line.startswith(CELL.partition("-")[2] + " ")]
    assert code == 0 and row.split()[-2:] == ["LESS", "ACCURATE"], out


def test_copies_and_another_machine_s_runs_are_left_out_of_the_history_and_named(capsys, results):
    """A results folder merged by hand: a file manager's copies of runs 2-5 (``... (copy).json``)
    counted as four more runs, each no different from its original, and the noise they
    narrowed turned an undecided comparison into "faster"; a colleague's run of another
    machine, copied into this machine's folder, counted as this machine's."""
    (machine,) = [p for p in Path(results).iterdir() if p.is_dir()]
    machine = machine.rename(machine.with_name(machine_id(INFO["distbench"])))   # an id distbench would make
    _, before, _ = run_cli(capsys, "compare", "1", "6", "--results", results)
    for path in sorted(machine.glob("000[2-5]_*.json")):
        shutil.copy(path, path.with_name(f"{path.stem} (copy).json"))
    foreign = json.loads(sorted(machine.glob("0002_*.json"))[0].read_text())
    foreign["machine_info"]["distbench"]["cpu_count"] = 8
    foreign["datetime"] = "2026-11-23T06:00:00+00:00"
    (machine / "0009_beef_20261123_060000.json").write_text(json.dumps(foreign))
    code, out, err = run_cli(capsys, "compare", "1", "6", "--results", results)
    assert code == 0 and out == before, out   # the same history: the same noise, the same verdicts
    assert err.count("hold the same measurements (one a copy): counted once") == 4, err
    other = machine_id({**INFO["distbench"], "cpu_count": 8})
    assert f"0009_beef_20261123_060000.json was measured on machine {other}, by its stored fingerprint" in err, err
    # Its report, named directly, presented it as this machine's, with this machine's history.
    code, out, _ = run_cli(capsys, "report", "--run", str(machine / "0009_beef_20261123_060000.json"), "--results",
                           results, "--out", str(Path(results).parent / "rep"))
    said = (f"Measured on machine {other}, by its stored fingerprint, not {machine.name}, whose folder holds it "
            f"(another machine's run copied in?): reported on its own, without {machine.name}'s history.")
    assert code == 0 and said in " ".join(out.split()), out
    page = (Path(results).parent / "rep" / "report.md").read_text()
    assert said in page and "## History" not in page, page   # one run: no history section
    # With its own machine's folder beside: machines side by side compare the two folders' own
    # runs; the copy had stood for this machine, its machine compared with itself ("the same").
    (Path(results) / other).mkdir()
    for k, path in enumerate(sorted(machine.glob("000[1-4]_*.json"))[:4], 1):
        theirs = json.loads(path.read_text())
        theirs["machine_info"]["distbench"]["cpu_count"] = 8
        (Path(results) / other / f"000{k}_beef_2026112{k}_060000.json").write_text(json.dumps(theirs))
    code, out, _ = run_cli(capsys, "report", "--run", str(machine / "0009_beef_20261123_060000.json"), "--results",
                           results, "--out", str(Path(results).parent / "rep2"))
    page = (Path(results).parent / "rep2" / "report.html").read_text()   # the machines: the page's section
    assert code == 0 and "The machines' fingerprints are the same" not in page, page
    used = re.search(r"Runs used: ([^<]*)", page).group(1)
    assert f"{machine.name}: run 0006" in used and "0009" not in used and f"{other}: run 0004" in used, used
    # A folder that holds nothing but another machine's copy: reported on its own, not a refusal
    # of a --reference nobody gave (its folder, emptied of the copy, had been taken for one).
    lone = Path(results) / machine_id({**INFO["distbench"], "cpu_count": 16})
    lone.mkdir()
    copied = lone / sorted(machine.glob("0001_*.json"))[0].name
    copied.write_text(sorted(machine.glob("0001_*.json"))[0].read_text())
    code, out, err = run_cli(capsys, "report", "--run", str(copied), "--results", results, "--out",
                             str(Path(results).parent / "rep3"))
    assert code == 0 and (Path(results).parent / "rep3" / "report.html").exists(), out + err
    # A check of a run against its copy passed every cell as "same".
    original = sorted(machine.glob("0002_*.json"))[-1]
    code, _, err = run_cli(capsys, "check", "--baseline", str(original), "--run",
                           str(original.with_name(f"{original.stem} (copy).json")), "--results", results)
    assert code == 2 and "are the same measurements (one a copy of the other)" in err, err


def test_a_run_s_label_as_compare_prints_it_names_that_run(capsys, results):
    """``A: MACHINE/0001_....json`` is a file under the results folder: given back from
    another folder it was "No stored run at ...: the file does not exist" (exit 2)."""
    _, out, _ = run_cli(capsys, "compare", "1", "6", "--results", results)
    a, b = (re.search(rf"^{side}: (\S+\.json) ", out, re.M).group(1) for side in ("A", "B"))
    code, again, err = run_cli(capsys, "compare", a, b, "--results", results)
    assert code == 0 and again == out, err


@pytest.mark.parametrize("argv", [["list"], ["compare", "1", "2"], ["check", "--baseline", "1"], ["report"]])
def test_a_results_path_that_is_a_file_is_said_so(capsys, tmp_path, argv):
    """``list --results afile`` said "Stored runs in afile/: none", exit 0; compare named a
    machine folder inside the file."""
    afile = tmp_path / "afile"
    afile.write_text("not a folder\n")
    code, _, err = run_cli(capsys, *argv, "--results", str(afile))
    assert code == 2 and err == (f"distbench: error: --results {afile} is a file, not a folder of stored runs; give "
                                 "the results folder.\n"), err


def test_run_as_json_or_csv_gives_numbers_a_program_can_read(capsys, tmp_path):
    """``--format json`` gave the table's text ("median ms": "1.29", "throughput": "24859
    ex/s", FLOPs inside a sentence); CSV the same text, and paragraphs after its rows. The
    figures are now the stored record's."""
    from distbench.render.run_table import run_summary
    from distbench.storage.files import load

    code, out, err = run_cli(capsys, "run", "--workload", "reuters_cnn", "--strategy", "default", "--loop", "custom",
                             "--data", "synthetic", "--steps-per-epoch", "20", "--guard-seeds", "0", "--no-peak",
                             "--timing-cost-pairs", "0", "--format", "json", "--results", str(tmp_path))
    assert code == 0, out + err
    (cell,) = json.loads(out)["cells"]
    (path,) = tmp_path.glob("*/*.json")
    (stored,) = json.loads(path.read_text())["benchmarks"][0]["extra_info"]["distbench"]["repeats"]
    assert cell["median_step_s"] == pytest.approx(stored["step_time"]["median"])
    assert cell["flops_per_step"] == stored["compute"]["flops_per_step"] and cell["processes"] == 1
    assert cell["test_value"] == stored["accuracy"]["test"]["accuracy"] and cell["test_metric"] == "accuracy"
    assert cell["examples_per_second"] == pytest.approx(32 / stored["step_time"]["median"])
    low, high = cell["interval_s"]
    assert low <= cell["median_step_s"] <= high and cell["peak_rss_bytes"] == stored["memory"]["peak_rss_bytes"]
    rows = list(csv.DictReader(io.StringIO(run_summary(load(path).results, "csv"))))
    assert len(rows) == 1 and float(rows[0]["median_step_s"]) == pytest.approx(cell["median_step_s"])
    assert float(rows[0]["interval_low_s"]) == pytest.approx(low) and rows[0]["flops_per_step"] == str(
        cell["flops_per_step"])
