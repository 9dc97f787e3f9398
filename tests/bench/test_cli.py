import re
import sys

import pytest
from distbench.cli.main import main
from distbench.workloads.registry import WORKLOADS


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--strategy", "mirorred"], "Unknown strategy 'mirorred'. Known: default, one_gpu, virtual, mirrored, "
         "tpu, multi_worker, parameter_server;"),
        (["run", "--workload", "reuter"], "Unknown workload 'reuter'. Known: reuters_cnn, multibranch, matmul;"),
        (["run", "--loop", "tape"], "Unknown loop 'tape'. Known: fit, train_on_batch, custom;"),
        (["run", "--steps-per-epoch", "0"], "Steps per epoch (--steps-per-epoch) must be an integer >= 1; received 0."),
        (["run", "--devices", "-1"], "Devices (--devices) must be an integer >= 1; received -1."),
        (["run", "--workers", "0"], "Workers (--workers) must be an integer >= 1; received 0."),
        (["run", "--strategy", "virtual", "--global-batch", "33"], "Global batch 33 is not divisible by 2 virtual devices"),
        (["run", "--data", "/no/such/dir"], "Unknown data source '/no/such/dir'. Valid: auto, keras, synthetic, or a path"),
        (["run", "--profile", "fast"], "Unknown profile 'fast'. Known: quick, full."),
        (["run", "--matmul-shape", "10,x,3"], "Bad matmul shape '10,x,3'"),
        (["run", "--target", "accuracy"], "Bad target 'accuracy': give METRIC=VALUE"),
        (["run", "--workload", "reuters_cnn", "--target", "auc=0.9"],
         "Target metric 'auc' is not one reuters_cnn scores; valid: accuracy, top5_accuracy."),
        (["run", "--target", "accuracy=0.5", "--eval-every", "0"], "Evaluation interval (--eval-every) must be"),
        # fit evaluated at its calls' ends, 30, 50, 80 for every 25 steps: its times to target read longer.
        (["run", "--workload", "reuters_cnn", "--strategy", "default", "--loop", "fit", "--target", "accuracy=0.5",
          "--steps-per-execution", "10"], "--eval-every 25 is not a multiple of --steps-per-execution 10: a "
         "time-to-target fit cell is evaluated only after whole calls of 10 steps, later than asked (every 25 steps: "
         "at 30, 50, 80), and its time to target would read longer than another loop's; give multiples of 10, or a "
         "--steps-per-execution that divides them."),
        (["ab", "--b", "--intra-op-threads 1", "--target", "accuracy=0.5"], "Interleaved pairs compare step times"),
        (["tune", "--workload", "reuters_cnn", "--target", "accuracy=0.5"], "tune ranks configurations by step time"),
        (["tune", "--workload", "reuters_cnn", "--workload", "multibranch"], "tune needs exactly one training "
         "workload: --workload reuters_cnn or multibranch (or your own, as file.py:Class or module:Class); received "
         "reuters_cnn, multibranch."),
        (["run", "--strategy", "tpu", "--connect-deadline", "0"], "Connect deadline (--connect-deadline) must be positive seconds, at most 2.592e+06 (30 days); received 0.0."),
        # Settings no selected cell reads are still checked (they ran the whole matrix, and saved it).
        (["run", "--strategy", "default", "--workers", "0"], "Workers (--workers) must be an integer >= 1; received 0."),
        # Counts of processes, bounded: the plan is built whole (a billion seeds grew by 95 MB a second, silent).
        (["run", "--guard-seeds", "1000000000"], "--guard-seeds must be an integer from 0 to 1000 (0 or 1 turns the "
         "accuracy guard off); received 1000000000."),
        (["run", "--repeats", "1001"], "--repeats must be an integer from 1 to 1000; received 1001."),
        (["run", "--repeats", "0"], "--repeats must be an integer from 1 to 1000; received 0."),
        (["run", "--target", "accuracy=0.5", "--eval-every", "5000", "--max-steps", "100"],
         "--eval-every 5000 is not below --max-steps 100: the target would be evaluated only when the step budget "
         "ends"),   # it read "reached at step 100": the budget
        (["run", "--target", "accuracy=0.5", "--eval-every", "100", "--max-steps", "100"],
         "--eval-every 100 is not below --max-steps 100"),
        (["run", "--strategy", "default", "--ps", "0"], "Parameter servers (--ps) must be an integer >= 1; received 0."),
        (["run", "--workload", "reuters_cnn", "--connect-deadline", "0"], "Connect deadline (--connect-deadline) must be"),
        (["run", "--workload", "reuters_cnn", "--matmul-repeats", "0"], "Matmul repeats (--matmul-repeats) must be an integer >= 1"),
        # An empty value ran as if not given: no target, the quick profile, the default shape, this folder.
        (["run", "--target="], "--target was given an empty value; valid: train each training cell until"),
        (["run", "--profile", " "], "--profile was given an empty value; valid: quick or full (default quick)."),
        (["run", "--matmul-shape="], "--matmul-shape was given an empty value; valid: quick, seed"),
        (["run", "--results="], "--results was given an empty value; valid: the results folder (default: results)."),
        (["list", "--results="], "--results was given an empty value; valid: the results folder"),   # read as "."
        (["compare", "1", "2", "--results", " "], "--results was given an empty value; valid: the results folder"),
        (["tune", "--workload", "reuters_cnn", "--confirm-pairs", "1"], "--confirm-pairs must be 0 (no confirmation) "
         "or at least 2 (a verdict needs two pairs); received 1."),   # it skipped the confirmation, silently
        (["tune", "--workload", "reuters_cnn", "--confirm-pairs", "-2"], "--confirm-pairs must be 0"),
        (["serve", "--ps", "0"], "--ps must be >= 1 (a SLURM job step's parameter servers); received 0."),
        # It listed run's options as valid, --repeats among them, which check --against does not take.
        (["check", "--against", "HEAD~1", "--run", "3"], "valid with --against: the run options of `distbench run` "
         "(--workload, --data, ...) but --repeats, --guard-seeds, --overhead and --full-table, and --threshold, "
         "--accuracy-tolerance, --min-pairs, --max-pairs, --budget, --no-lockstep,"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("distbench: error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_a_side_of_one_word_with_a_dash_says_how_to_give_it(capsys):
    """argparse reads ``--b "--intra-op-threads=2"`` as an option: its "expected one argument" did not say why."""
    with pytest.raises(SystemExit) as stopped:
        main(["ab", "--b", "--intra-op-threads=2"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.startswith(
        "distbench ab: error: argument --b: expected one argument: a side of one word that starts with a dash reads "
        "as an option; give it with '=', --b=--intra-op-threads=2"), err


def test_list_shows_each_adapter_with_availability(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("reuters_cnn", "multibranch", "matmul", "fit", "train_on_batch", "custom"):
        assert name in out
    assert re.search(r"^  tpu +unavailable: no TPU found \(TPU_NAME unset, no local TPU\)$", out, re.M), out
    assert re.search(r"^  parameter_server +available: a coordinator, 2 workers and 1 parameter server on", out, re.M)
    assert max(len(line) for line in out.splitlines()) <= 120
    assert out.startswith("Devices (TensorFlow's physical devices; each cell probes its own before it runs): CPU ")


@pytest.mark.slow
def test_run_prints_progress_and_the_table_and_saves(capsys, tmp_path):
    from distbench.storage.files import Storage, load

    argv = ["run", "--workload", "matmul", "--strategy", "default", "--matmul-shape", "32,8,32",
            "--matmul-repeats", "3", "--repeats", "2", "--results", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "[1/2] matmul-default: ok" in out and "[2/2] matmul-default: ok" in out and "GFLOP/s" in out
    (path,) = Storage(tmp_path).runs()
    assert f"Saved {path}" in out
    repeats = load(path).cells()["matmul-default"]
    assert len(repeats) == 2 and repeats[0]["worker_pid"] != repeats[1]["worker_pid"]   # fresh processes


@pytest.mark.slow
def test_run_with_guard_and_overhead_shows_and_stores_both(capsys, tmp_path, monkeypatch):
    from distbench.session import overhead
    from distbench.storage.files import Storage, load

    # Three pairs: a 3% target is rarely decided on a busy CI machine, and eight pairs of
    # processes would go on showing what three show (tests/bench/test_overhead.py finds a delay).
    monkeypatch.setattr(overhead, "MAX_PAIRS", overhead.MIN_PAIRS)

    argv = ["run", "--workload", "reuters_cnn", "--strategy", "virtual", "--loop", "custom", "--data", "synthetic",
            "--epochs", "1", "--steps-per-epoch", "12", "--warmup-steps", "2", "--eval-examples", "200",
            "--guard-seeds", "2", "--overhead", "--timing-cost-pairs", "0", "--no-peak", "--results", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # The guard's reference replicates ran as cells of their own, after the selection.
    assert "[2/3] reuters_cnn-default-fit: ok" in out and "[3/3] reuters_cnn-default-fit-init1: ok" in out
    assert "Harness overhead (the harness's cell against a bare TensorFlow loop" in out
    assert "reuters_cnn-default-custom-overhead: the harness adds" in out
    # --timing-cost-pairs 0: what fit's timing callback costs is measured nowhere (tests/bench/test_overhead.py
    # runs that part of the benchmark)
    assert "fit-overhead" not in out and "  fit's timing callback: not measured (--timing-cost-pairs 0)" in out
    run = load(Storage(tmp_path).runs()[0])
    guard = run.cells()["reuters_cnn-virtual-custom"][0]["accuracy_guard"]
    assert guard["reference"]["seeds"] == [0, 1] and guard["status"] in ("ok", "underpowered", "low", "high", "chance")
    assert guard["status"] != "ok" or guard["reference"]["half_width"] <= 0.05    # "ok" only with power
    assert "Accuracy guard's power: reuters_cnn: " in out
    o = run.overhead[0]["overhead"]
    assert o["pairs"] == 3 and len(o["bare"]) == len(o["harness"]) == 3
    assert o["fit"] == {"not_measured": "--timing-cost-pairs 0"}
    assert "timing_cost" not in run.cells()["reuters_cnn-default-fit"][0]["loop"]


@pytest.mark.slow
def test_tune_runs_ranks_and_lists_what_it_did_not_rank(capsys, tmp_path, monkeypatch):
    """The whole command, through real workers: candidates measured, ranked, the verdict line;
    the winner's confirmation against plain fit saved as a run of its own (it was printed,
    and found nowhere afterwards). The loops are the project's matrix file's, and the ones it
    leaves out are said (tune had followed it without a word)."""
    from distbench.storage.files import Storage, load

    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "pyproject.toml").write_text('[tool.distbench]\nloops = ["custom"]\n')
    monkeypatch.chdir(tmp_path / "project")
    argv = ["tune", "--workload", "reuters_cnn", "--strategy", "default", "--repeats", "1",
            "--guard-seeds", "0", "--confirm-pairs", "2", "--epochs", "1", "--steps-per-epoch", "15",
            "--data", "synthetic", "--no-peak", "--results", str(tmp_path), "--keras", "tf_keras"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # In the flavour asked for (tune had ranked Keras 3's, saying nothing).
    assert "[1/2] reuters_cnn-default-custom-tf_keras" in out and "[2/2] reuters_cnn-default-custom-tf_keras-xla" in out
    assert "vs its plain fit" in out      # the ranking's table, each row against its own strategy's
    assert (f"not ranked: loops fit, train_on_batch not tried: the matrix file {tmp_path / 'project' / 'pyproject.toml'} "
            "selects custom (--loop names the loops to tune)") in " ".join(out.split()), out
    assert "Fastest by mean step: default custom" in out and "Interleaved with plain fit (2 pairs)" in out, out
    ranked, confirmed = (load(path) for path in Storage(tmp_path).runs())
    assert not ranked.interleaved and confirmed.interleaved["tune"] is True
    from distbench.render.stored_pairs import stored_paired_note   # its report had said it was judged on speed alone
    assert confirmed.interleaved["accuracy_tolerance"] == 0.05 and "stored before" not in stored_paired_note(
        confirmed.interleaved)
    (cell,) = confirmed.interleaved["cells"]
    assert confirmed.interleaved["cells"][cell]["pairs"] == 2 and f"{confirmed.path.name} (the confirmation" in out


@pytest.mark.parametrize("given, said", [
    (["--keras", "tf_keras", "--keras", "keras3"], "tune ranks one Keras flavour at a time; received --keras tf_keras, "
                                                   "keras3: run tune once with each."),
    (["--init-seed", "3"], "tune trains every candidate from the cell's own seed, and the accuracy guard's from its "
                           "seeds (--guard-seeds); --init-seed 3 is for run."),
    (["--steps-per-execution", "10"], "tune tries fit's steps per execution itself (1, 10 and 50, its candidates); "
                                      "--steps-per-execution 10 is for run and ab."),   # it was dropped without a word
    (["--jit-compile"], "tune tries XLA off and on itself (each candidate both ways); --jit-compile is for run and ab."),
])
def test_tune_refuses_what_it_would_ignore(capsys, tmp_path, given, said):
    assert main(["tune", "--workload", "reuters_cnn", *given, "--results", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"distbench: error: {said}\n"


def test_plan_without_stored_pairs_says_how_to_measure_them(capsys, tmp_path):
    assert main(["plan", "--detect", "10%", "--threshold", "5%", "--results", str(tmp_path)]) == 0   # a percentage
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Pair noise from the interleaved runs stored for ") and out[0].endswith(f"in {tmp_path}/:")
    assert out[1].split() == ["cell", "pair", "sd", "from", "pairs", "needed", "about"]
    assert out[-1].startswith("No stored interleaved runs for this selection: run `distbench ab --b \"\" ...`")


PLAN_MODEL = """
from distbench import Workload


class Digits(Workload):
    name = "digits"

    def build_model(self):
        raise NotImplementedError

    def data(self, source, seed):
        raise NotImplementedError

    def loss(self):
        raise NotImplementedError

    def metrics(self):
        return []
"""


def test_plan_reads_a_matrix_file_s_reference_as_its_workload_s_name(capsys, tmp_path, monkeypatch):
    """A project's matrix names its workload ``models.digits:Digits``; its stored cells are
    ``digits-...``: plan selects by the name (it refused the reference as unknown)."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")
    (tmp_path / "models" / "digits.py").write_text(PLAN_MODEL)
    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\nworkloads = ["models.digits:Digits"]\n')
    (tmp_path / "results").mkdir()
    monkeypatch.chdir(tmp_path)
    try:
        for extra in ([], ["--workload", "digits"], ["--workload", "models.digits:Digits"]):
            assert main(["plan", "--detect", "10%", *extra]) == 0, capsys.readouterr().err
            assert "No stored interleaved runs for this selection" in capsys.readouterr().out
        # An unknown name lists the matrix file's own workloads among the known ones.
        assert main(["run", "--workload", "nosuch", "--no-save"]) == 2
        assert capsys.readouterr().err.startswith("distbench: error: Unknown workload 'nosuch'. Known: reuters_cnn, "
                                                  "multibranch, matmul, digits;")
    finally:   # this process's registry and modules as they were
        if "digits" in WORKLOADS:
            WORKLOADS.unregister("digits")
        for name in [m for m in sys.modules if m == "models" or m.startswith("models.")]:
            del sys.modules[name]


@pytest.mark.parametrize("argv, message", [
    (["run", "--global-batch", "abc"], "distbench run: error: argument --global-batch: invalid int value: 'abc'"),
    (["nope"], "distbench: error: argument command: invalid choice: 'nope'"),
    (["run", "--target", "accuracy=0.5", "--target", "loss<=1"],
     "distbench run: error: --target was given twice (accuracy=0.5 and loss<=1); it takes one value"),
    # A stored-run command's option given twice: argparse kept the last without a word (a CI gate's verdict changed)
    (["check", "--baseline", "1", "--baseline", "2"],
     "distbench check: error: --baseline was given twice (1 and 2); it takes one value"),
    (["compare", "1", "2", "--threshold", "50%", "--threshold", "1%"],
     "distbench compare: error: --threshold was given twice (50% and 1%)"),
    (["report", "--run", "1", "--run", "2"], "distbench report: error: --run was given twice (1 and 2)"),
    (["compare", "1", "2", "--format", "json", "--format", "csv"],
     "distbench compare: error: --format was given twice (json and csv)"),
    # An empty value ran as if not given (the default folder, or the whole report)
    (["report", "--out", ""], "distbench report: error: --out was given an empty value; valid: output folder"),
    (["report", "--reference", " "], "distbench report: error: --reference was given an empty value; valid: "),
    # An option of another command: the pointer is to this command's help, which lists what it takes.
    (["run", "--threshold", "0.1"], "distbench: error: unrecognized arguments for `distbench run`: --threshold 0.1 "
                                    "(`distbench run --help` lists every option)"),
])
def test_a_value_argparse_refuses_is_one_line_too(capsys, argv, message):
    """Not argparse's usage block (26 lines for run) before the line that says what is wrong."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("\n") == 1 and err.startswith(message), err


def test_a_stored_run_command_finds_this_machine_s_runs_without_tensorflow(tmp_path):
    """With several machines' folders, ``latest`` means this machine's: its id imported
    TensorFlow in the parent (9.6-10.3 s for `compare latest~1 latest` in this checkout),
    though where TensorFlow can list no GPU nothing of it is needed. The folder is named
    by the full machine description (:func:`machine_info`, TensorFlow's answers); the
    command finds it without TensorFlow."""
    import json
    import shutil
    import subprocess
    from pathlib import Path

    from distbench.storage import machine

    if not machine.no_gpu_possible():
        pytest.skip("a GPU device node here: the machine's id needs TensorFlow's GPU list")
    folder = Path(__file__).parents[2] / "results" / "x86_64-2cpu-nogpu-f0d42a"
    stored = [next(folder.glob(f"{n:04d}_*.json")) for n in (103, 104, 102)]   # the main command's runs
    mine = tmp_path / "results" / machine.machine_id(machine.machine_info())
    other = tmp_path / "results" / "x86_64-64cpu-8gpu-abcdef"
    mine.mkdir(parents=True)
    other.mkdir()
    for path in stored[:2]:
        shutil.copy(path, mine)
    shutil.copy(stored[2], other)
    saying = ("import sys; from distbench.cli.main import main; code = main(sys.argv[1:]); "
              "print('TensorFlow in the parent:', 'tensorflow' in sys.modules); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", saying, "compare", "latest~1", "latest", "--format", "json"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.rstrip().endswith("TensorFlow in the parent: False")
    compared = json.loads(result.stdout.rsplit("TensorFlow in the parent", 1)[0])
    assert (compared["a"], compared["b"]) == (f"{mine.name}/{stored[0].name}", f"{mine.name}/{stored[1].name}")


def test_version_names_the_installed_distbench(capsys):
    """`distbench --version` read "the following arguments are required: command"."""
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"distbench {version('distbench')}\n"


def test_an_empty_value_s_refusal_shows_its_help_as_printed(capsys):
    """``plan --detect ""`` said "valid: the slow-down to catch: 10%% or 0.10" (argparse's escape)."""
    with pytest.raises(SystemExit) as stopped:
        main(["plan", "--detect", ""])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "valid: the slow-down to catch: 10% or 0.10" in err and "%%" not in err, err


@pytest.mark.parametrize("command, hidden", [
    ("tune", ("--target", "--eval-every", "--max-steps", "--steps-per-execution", "--jit-compile", "--init-seed")),
    ("ab", ("--target", "--eval-every", "--max-steps")),
])
def test_help_lists_no_option_the_command_refuses(capsys, command, hidden):
    """tune --help and ab --help listed --target, which both refuse (a user's trial); they still
    refuse it in one line, saying what to use."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    shown = capsys.readouterr().out
    assert not [flag for flag in hidden if flag + " " in shown or flag + "\n" in shown], shown
    assert "--workload" in shown and ("default: the matrix file's, else default" in " ".join(shown.split())
                                      if command == "tune" else "--threshold" in shown)
