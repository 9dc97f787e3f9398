"""Verdicts on a user's own code, in a git repository outside the checkout, through the real
command and real workers: ``check --against`` and ``bisect`` measure the *project's* history
(a real change to its model makes it about 1.5x slower), an ``ab`` side's import-time
environment reaches TensorFlow, and relative paths and module references mean in every
worker what they mean where the command was typed."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE_DATA = os.path.join(ROOT, "examples", "own_model", "data")
pytestmark = pytest.mark.slow

# The user's model: embeddings flattened into one wide hidden layer, whose width is most
# of a step's work. The slow commit doubles it (256 -> 512): about 1.4-1.5x the step time here.
MODEL = '''"""The project's model."""
from distbench import TextClassifier

HIDDEN = {hidden}


class Sentiment(TextClassifier):
    name = "sentiment"
    vocab_size = 2000
    num_classes = 2
    sequence_length = 64

    def build_model(self, vocab_size: int):
        import keras
        from keras import layers

        return keras.Sequential([
            keras.Input(shape=(self.sequence_length,), dtype="int32"),
            layers.Embedding(vocab_size, 32),
            layers.Flatten(),
            layers.Dense(HIDDEN, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ], name=self.name)
'''
PYPROJECT = '''[project]
name = "user-project"
version = "0.1.0"

[tool.distbench]
workloads = ["model.py:Sentiment"]
strategies = ["default"]
loops = ["custom"]
data = "synthetic"
epochs = 1
steps_per_epoch = 40
eval_examples = 256
no_peak = true
'''
# Cells short enough for CI; pairs until decided, as a user would run them.
# Up to 12 pairs for a verdict. A lockstep pair shares two cores with the other test process
# under `pytest -n 2`; one CI run's 2x train_step read B/A 1.31 [1.01, 1.71] after 8 pairs, its
# first pair disturbed (A 36 ms, B 23 ms, then A 11-20 ms): undecided, rightly. A decided cell
# still stops at its verdict, so this costs time only where 8 pairs would not have decided.
FAST = ["--max-pairs", "12"]


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DISTBENCH_SPAWN")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", GIT_AUTHOR_NAME="u", GIT_AUTHOR_EMAIL="u@example.com",
               GIT_COMMITTER_NAME="u", GIT_COMMITTER_EMAIL="u@example.com")
    return env


def _git(where, *args):
    return subprocess.run(["git", *args], cwd=where, check=True, capture_output=True, text=True,
                          env=_env()).stdout.strip()


def _commit(where, message, files):
    for name, text in files.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_text(text)
    _git(where, "add", "-A")
    _git(where, "commit", "-q", "-m", message)
    return _git(where, "rev-parse", "HEAD")


def distbench(where, *args, env=None, timeout=900):
    result = subprocess.run([sys.executable, "-m", "distbench", *args], cwd=where, capture_output=True, text=True,
                            timeout=timeout, env={**_env(), **(env or {})})
    return result


def _history(where, middle: tuple[str, str], at: int = 2):
    """The project's history: base, then three unrelated commits with the ``middle`` commit
    (its message and model.py) at ``at`` (2: after the first of them)."""
    where.mkdir()
    _git(where, "init", "-q")
    message, model = middle
    others = [("Readme", {"README.md": "# A project\n"}), ("Docs", {"README.md": "# A project\n\nMore words.\n"}),
              ("Notes", {"NOTES.md": "notes\n"})]
    others.insert(at - 1, (message, {"model.py": model}))
    shas = [_commit(where, "Base model", {"model.py": MODEL.format(hidden=256), "pyproject.toml": PYPROJECT,
                                          ".gitignore": "results/\ndata/\n"})]
    shas += [_commit(where, m, files) for m, files in others]
    shutil.copytree(EXAMPLE_DATA, where / "data")   # untracked data: both sides read it
    return where, shas


def _clone(history, tmp_path):
    """A clone of the history, at its last commit, with its own results folder."""
    where, shas = history
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(where), str(clone)], check=True, capture_output=True, env=_env())
    shutil.copytree(where / "data", clone / "data")
    return clone, shas


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """The slow commit: a hidden layer twice as wide."""
    return _history(tmp_path_factory.mktemp("user") / "project", ("Wider hidden layer", MODEL.format(hidden=512)))


@pytest.fixture
def project(history, tmp_path):
    return _clone(history, tmp_path)


def _stored(where):
    (path,) = sorted((where / "results").glob("*/*.json"))[-1:]
    return json.loads(path.read_text())


def test_check_against_finds_the_user_s_slow_commit(project):
    """The workload named by the matrix file (a module reference: test_check_against_from_a_
    sub_folder_...; the same file named on the command line was a second run of this test,
    left out for CI's time: the matrix file's reference is resolved to that file reference)."""
    where, shas = project
    _git(where, "checkout", "-q", shas[2])      # HEAD: the slow commit; HEAD~1 the readme
    result = distbench(where, "check", "--against", "HEAD~1", *FAST)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "SLOWER: sentiment-default-custom" in result.stdout
    run = _stored(where)
    cells = run["distbench"]["interleaved"]["cells"]
    assert cells["sentiment-default-custom"]["verdict"] == "slower"
    assert cells["sentiment-default-custom"]["ratio"] > 1.2          # about 1.4-1.5x here
    sides = run["distbench"]["interleaved"]
    assert sides["a"]["code"]["commit"] == shas[1] and sides["b"]["code"]["commit"] == shas[2]
    assert run["commit_info"]["id"] == shas[2] and "version" in run["commit_info"]["distbench"]
    a = next(b for b in run["benchmarks"] if b["param"].endswith("@A"))["extra_info"]["distbench"]["repeats"][0]
    assert a["started"]["mode"] == "fork" and a["started"]["cwd"] != str(where)   # side A ran in its worktree
    tested = set()
    for side in "AB":   # pair k trained both sides with training seed k
        repeats = next(b for b in run["benchmarks"] if b["param"].endswith(f"@{side}"))["extra_info"]["distbench"][
            "repeats"]
        assert [r["config"].get("init_seed") for r in repeats] == [None, *range(1, len(repeats))]
        tested |= {r["data"]["test_fingerprint"] for r in repeats}
    assert len(tested) == 1 and cells["sentiment-default-custom"]["accuracy"] == "within"   # the same test examples


def test_check_against_a_commit_that_tests_on_other_examples_does_not_pass(tmp_path):
    """A commit that shortens the documents changes the examples both sides' metrics are
    measured on (synthetic ones here; a data() that splits otherwise alike): read as test
    accuracy A against B and passed (exit 0) in a user's trial."""
    where = tmp_path / "project"
    where.mkdir()
    _git(where, "init", "-q")
    _commit(where, "Base model", {"model.py": MODEL.format(hidden=32), "pyproject.toml": PYPROJECT,
                                  ".gitignore": "results/\n"})
    _commit(where, "Shorter documents", {"model.py": MODEL.format(hidden=32).replace("sequence_length = 64",
                                                                                     "sequence_length = 48")})
    # Up to 8 pairs: one CI run (a14253f) left the speed of this small model undecided after 4
    # under load; a decided cell stops at its verdict, so this costs time only where 4 would not do.
    result = distbench(where, "check", "--against", "HEAD~1", "--threshold", "50%", "--max-pairs", "8")
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-2000:]
    assert "ACCURACY NOT COMPARABLE: sentiment-default-custom: the sides' test examples differ (A " in result.stdout
    assert result.stdout.splitlines()[-1] == "RESULT: not passed (exit 3)", result.stdout[-2000:]
    cell = _stored(where)["distbench"]["interleaved"]["cells"]["sentiment-default-custom"]
    assert cell["accuracy"] == "not comparable" and cell["verdict"] in ("same", "faster"), cell   # speed: decided


def test_each_side_runs_with_its_own_version_of_the_matrix_file(project, tmp_path):
    """A commit that only quadruples the matrix file's batch: side A takes the batch of its own
    pyproject.toml, so a step is four times the work on side B. That is no measure of speed
    (it had read "slower", exit 1; a halved batch and a slower model had passed): the cell is
    not comparable, nothing is measured, and the check fails closed (exit 3), saying how to
    measure both sides with one batch."""
    where, _ = project
    pyproject = where / "pyproject.toml"
    _commit(where, "Batch 128", {"pyproject.toml": pyproject.read_text() + "global_batch = 128\n"})
    result = distbench(where, "check", "--against", "HEAD~1", *FAST)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-2000:]
    assert "NOT COMPARABLE: sentiment-default-custom (global_batch A 32, B 128): " in result.stdout, result.stdout
    assert "(--global-batch, --scaling, --epochs, --steps-per-epoch)" in " ".join(result.stdout.split())
    assert "RESULT: not passed (exit 3)" in result.stdout
    run = _stored(where)
    assert run["distbench"]["interleaved"]["a"]["changes"] == {"global_batch": 32}
    (cell,) = run["distbench"]["interleaved"]["cells"].values()
    assert cell["verdict"] == "not comparable" and cell["pairs"] == 0 and not run["benchmarks"]


def test_an_unchanged_commit_is_not_found_slower(project):
    where, shas = project
    _git(where, "checkout", "-q", shas[4])      # HEAD~1 differs only in NOTES.md
    result = distbench(where, "check", "--against", "HEAD~1", "--max-pairs", "5")   # may stay undecided
    assert result.returncode in (0, 3), result.stdout[-3000:] + result.stderr[-2000:]   # pass, or undecided
    assert "SLOWER" not in result.stdout
    assert f"A: revision HEAD~1 (commit {shas[3][:8]})" in result.stdout   # the commit it resolved to
    verdict = _stored(where)["distbench"]["interleaved"]["cells"]["sentiment-default-custom"]["verdict"]
    assert verdict in ("same", "undecided")


def test_a_model_file_not_committed_at_the_revision_is_named_as_such(project):
    """A new model file not yet `git add`-ed: the revision's side failed with "no file
    /tmp/distbench-.../new_model.py", a path the user never made."""
    where, shas = project
    shutil.copy(where / "model.py", where / "new_model.py")
    result = distbench(where, "check", "--against", "HEAD", "--workload", "new_model.py:Sentiment", "--max-pairs", "3",
                       "--no-save")
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-2000:]
    said = " ".join(result.stdout.split())
    assert (f"commit {shas[-1][:8]} has no file new_model.py (a file that is not committed, untracked or added later, "
            "is only in the working tree: commit it to measure it at a revision)") in said, result.stdout[-3000:]


def test_bisect_names_the_slow_commit_and_the_pairs_each_step_spent(tmp_path):
    # The slow-down sought is 40%; a step counts as slower beyond 20%. The slow commit comes
    # first after GOOD, so every step weighs a slower model against GOOD's: a step of an
    # unchanged commit can stay undecided on a busy machine (B/A 1.10 [0.99, 1.23] after 8
    # pairs in one CI run), and bisect then says so and stops (exit 3), as it should.
    history = _history(tmp_path / "project", ("Wider hidden layer", MODEL.format(hidden=512)), at=1)
    where, shas = _clone(history, tmp_path)
    # Up to 12 pairs a step, not 8: one CI run's first step (the 1.4x commit against GOOD) had
    # a pair with B 20% faster on a busy machine and stayed undecided at B/A 1.41 [1.16, 1.71]
    # after 8, so bisect stopped (exit 3, rightly). A decided step still stops at its verdict.
    result = distbench(where, "bisect", shas[0], "HEAD", "--threshold", "0.2", "--find", "slower", "--max-pairs", "12",
                       timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"FIRST SLOWER COMMIT: {shas[1]} \"Wider hidden layer\"" in result.stdout
    lines = result.stdout.splitlines()
    assert max(map(len, lines)) <= 120   # a step's line continues on indented lines
    steps = [line for line in "\n".join(lines).replace("\n    ", " ").splitlines() if line.startswith("step ")]
    assert steps[0].startswith(f"step 1: {shas[4][:8]} (commit 4 of 4 after GOOD")   # BAD first: is it slower?
    assert all(" pairs (" in line for line in steps) and len(steps) == 3     # BAD, then two halvings
    assert "4 commits after GOOD; 3 steps" in result.stdout
    assert len(list((where / "results").glob("*/*.json"))) == 3              # every step stored


def test_bisect_names_the_commit_that_learns_worse(tmp_path):
    """A commit that sets the learning rate to 0 (test AUC at chance on the project's data,
    about 0.97 before) is a regression at the step's speed, whatever that is: bisect names it
    by accuracy and says by how much."""
    lr0 = MODEL.format(hidden=256).replace("    sequence_length = 64\n", "    sequence_length = 64\n"
                                                                           "    learning_rate = 0.0\n")
    where, shas = _clone(_history(tmp_path / "history", ("Learning rate 0", lr0)), tmp_path)
    # Looking for accuracy alone: under the default ``--find regression`` an unchanged commit
    # is "same" only once its speed is decided too, and one CI run (6ad29eb) left the Readme
    # commit undecided after 8 pairs (B/A 1.08 [0.96, 1.22]), so bisect stopped (exit 3),
    # rightly. The speed search is the test above.
    result = distbench(where, "bisect", shas[0], "--data", "data", "--threshold", "0.2", "--find", "less-accurate",
                       timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"FIRST LESS ACCURATE COMMIT: {shas[2]} \"Learning rate 0\"" in result.stdout
    assert "LESS ACCURATE: sentiment-default-custom: test auc A 0.9" in result.stdout
    assert "4 commits after GOOD; 3 steps" in result.stdout and result.stdout.rstrip().endswith("RESULT: found (exit 0)")


def test_bisect_fails_a_commit_whose_matrix_file_makes_an_impossible_cell(tmp_path):
    """A commit whose pyproject.toml sets ``workers = 3`` beside a batch of 32 (multi_worker
    cannot split it; the next commit sets 4): bisect ended at that commit with exit 2,
    without the steps it had measured or the range. Its step now fails with the reason,
    as a step whose cells crashed: exit 3, nothing measured or stored for it."""
    where, shas = _clone(_history(tmp_path / "history", ("Comment", MODEL.format(hidden=256) + "# a comment\n")), tmp_path)
    three = _commit(where, "Three workers", {"pyproject.toml": PYPROJECT + "workers = 3\n"})
    _commit(where, "Four workers", {"pyproject.toml": PYPROJECT + "workers = 4\n"})
    result = distbench(where, "bisect", shas[0], "HEAD~1", "--strategy", "multi_worker", timeout=300)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-2000:]
    out = result.stdout.replace("\n    ", " ")
    assert (f"step 1: {three[:8]} (commit 5 of 5 after GOOD, \"Three workers\") against GOOD: FAILED, 0 pairs "
            f"(Side B (candidate {three[:8]}): Global batch 32 is not divisible by the 3 local workers") in out, out
    assert f"\n  Side B (candidate {three[:8]}): Global batch 32" in out and out.rstrip().endswith("RESULT: failed (exit 3)")
    assert "Traceback" not in result.stderr and not list(where.glob("results/*/*.json"))
    # A matrix file that does not parse is such a step too; GOOD's own impossible cell is
    # said once, before any step (exit 2).
    broken = _commit(where, "Broken matrix file", {"pyproject.toml": "[tool.distbench\n"})
    _commit(where, "Mended", {"pyproject.toml": PYPROJECT})
    result = distbench(where, "bisect", shas[0], "HEAD~1", timeout=300)
    assert result.returncode == 3 and f"\n  Side B (candidate {broken[:8]}): Cannot read the matrix file " \
        "pyproject.toml: " in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
    # check --against that commit: one line naming the side and the file in the revision (it
    # named the file in a temporary worktree already removed).
    result = distbench(where, "check", "--against", "HEAD~1", timeout=300)
    assert result.returncode == 2 and result.stderr.startswith(
        "distbench: error: Side A (revision HEAD~1): Cannot read the matrix file pyproject.toml: "), result.stderr
    assert result.stderr.count("\n") == 1 and not list(where.glob("results/*/*.json"))
    result = distbench(where, "bisect", three, "HEAD", "--strategy", "multi_worker", timeout=300)
    assert result.returncode == 2 and result.stderr.startswith(
        f"distbench: error: Side A (good {three[:8]}): Global batch 32 is not divisible"), result.stderr


def test_check_baseline_judges_the_accuracy_of_runs_with_a_training_seed_of_their_own(tmp_path):
    """Runs made with ``--init-seed 7`` have no plain cell beside their seed's. A library the
    model imports from outside the project (as an upgrade would) sets the learning rate to
    0 (test AUC at chance): same code, data and settings, so the runs compare, and the
    check fails on accuracy. It passed the accuracy check: the cell was taken for a guard
    replicate, judged only through a reference cell that was not there. Run 2 also measures a
    loop run 1 did not: the check names that cell as not checked."""
    lib, where = tmp_path / "lib" / "site-packages", tmp_path / "project"   # installed code: not the project's
    lib.mkdir(parents=True)
    where.mkdir()
    (lib / "hyper.py").write_text("LEARNING_RATE = 0.001\n")
    (where / "model.py").write_text(
        MODEL.format(hidden=256).replace("HIDDEN = 256\n", "HIDDEN = 256\nfrom hyper import LEARNING_RATE\n")
        .replace("    sequence_length = 64\n", "    sequence_length = 64\n    learning_rate = LEARNING_RATE\n"))
    (where / "pyproject.toml").write_text(PYPROJECT)
    shutil.copytree(EXAMPLE_DATA, where / "data")
    for rate, loops in (("0.001", ["custom"]), ("0.0", ["custom", "train_on_batch"])):
        (lib / "hyper.py").write_text(f"LEARNING_RATE = {rate}\n")
        run = distbench(where, "run", "--init-seed", "7", "--guard-seeds", "0", "--data", "data",
                        *[a for loop in loops for a in ("--loop", loop)], env={"PYTHONPATH": str(lib)})
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    result = distbench(where, "check", "--baseline", "1", "--run", "2")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "  sentiment-default-custom-init7: test auc 0.9" in result.stdout, result.stdout[-3000:]
    # The cell run 2 added has nothing to be checked against, and the check says so.
    not_checked = result.stdout[result.stdout.index("NOT CHECKED: 1 cell only in "):result.stdout.index("RESULT:")]
    assert "to check against" in not_checked and "\n  sentiment-default-train_on_batch-init7\n" in not_checked, not_checked


# A model with a train_step of its own (as a GAN's or a custom loss's); the slow commit's
# runs the step twice (REPEAT = 2).
OWN_STEP = MODEL.replace("HIDDEN = {hidden}\n", '''HIDDEN = 256
REPEAT = {repeat}

import keras


class Stepped(keras.Sequential):
    def train_step(self, data):
        for _ in range(REPEAT - 1):
            super().train_step(data)
        return super().train_step(data)
''').replace("return keras.Sequential([", "return Stepped([")


def test_a_slower_train_step_of_the_model_s_own_is_no_pass_under_the_custom_loop(tmp_path):
    """The custom loop runs a step of its own: under it, a commit that makes the model's own
    train_step twice the work read ``same`` and PASS (exit 0). Now its cells are skipped on
    both sides with the reason, after one pair, and train_on_batch, which calls the model's
    step, finds the commit slower. (A check whose every cell is skipped decides nothing, exit
    3: tests/bench/test_ab.py; a run's repeats of a skipped cell start no more processes:
    tests/bench/test_runner.py.)"""
    where, _ = _clone(_history(tmp_path / "history", ("Own step", OWN_STEP.format(repeat=1))), tmp_path)
    _commit(where, "Step twice", {"model.py": OWN_STEP.format(repeat=2)})
    both = distbench(where, "check", "--against", "HEAD~1", "--loop", "custom", "--loop", "train_on_batch", *FAST)
    assert both.returncode == 1 and "SLOWER: sentiment-default-train_on_batch" in both.stdout, both.stdout[-3000:]
    assert ("Not run here: sentiment-default-custom (custom: the model defines its own train_step (Stepped), "
            "which this loop does not run") in both.stdout.replace("\n    ", " "), both.stdout
    stored = _stored(where)
    custom = stored["distbench"]["interleaved"]["cells"]["sentiment-default-custom"]
    assert custom["verdict"] == "skipped" and custom["pairs"] == 0   # one pair, not eight, found it out
    flops = {b["param"][-1]: b["extra_info"]["distbench"]["repeats"][0]["compute"]["flops_per_step"]
             for b in stored["benchmarks"] if "train_on_batch" in b["param"]}   # the model's own step, as train_on_batch ran it
    assert 1.9 < flops["B"] / flops["A"] < 2.1, flops


def test_a_run_that_measures_nothing_is_no_pass_and_its_overhead_skips_too(tmp_path):
    """The overhead benchmark of a model with its own train_step: the harness's side skips it
    (the custom loop would not run that step), and the run ended in a TypeError traceback,
    nothing saved (and the bare loop's worker, which did not load the user's model, failed
    with "Unknown workload"). Now the overhead is skipped with the reason; with the cell
    skipped too, nothing was measured, and the run exits 3, not 0."""
    (tmp_path / "model.py").write_text(OWN_STEP.format(repeat=1))
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    result = distbench(tmp_path, "run", "--overhead", "--guard-seeds", "0", "--steps-per-epoch", "20")
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    # The model's module imports Keras at its top, so the parent that loads it imports TensorFlow,
    # whose C++ start-up lines (oneDNN, CUDA drivers) reached the terminal.
    assert "oneDNN" not in result.stderr and "absl::InitializeLog" not in result.stderr, result.stderr[-2000:]
    assert ("sentiment-default-custom-overhead: SKIPPED: side B: custom: the model defines its own train_step"
            in result.stdout.replace("\n    ", " ")), result.stdout[-3000:]
    assert "A ERROR" not in result.stderr + result.stdout   # the bare loop's worker loads the user's model too
    stored = _stored(tmp_path)["distbench"]
    assert [o["status"] for o in stored["overhead"]] == ["skipped"]
    # The same matrix under pytest: every cell skipped was pytest's exit 0, a green CI.
    result = subprocess.run([sys.executable, "-m", "pytest", "--benchmark-only", "-p", "no:cacheprovider",
                             "--distbench-guard-seeds", "0", "--distbench-steps-per-epoch", "20"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=900, env=_env())
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "distbench: nothing was measured (every cell skipped" in result.stdout, result.stdout[-3000:]


def test_a_change_that_adds_a_workload_checks_the_ones_the_revision_has(tmp_path):
    """The change adds model2.py and selects it beside model.py's: the revision's worker
    failed every cell on loading model2.py, the unchanged one too, and the check could never
    pass. Now the new cell alone fails on side A (the baseline: --allow-missing lets it by);
    the other is judged."""
    where = tmp_path / "adds"
    where.mkdir()
    _git(where, "init", "-q")
    _commit(where, "Base", {"model.py": MODEL.format(hidden=64), ".gitignore": "results/\n", "pyproject.toml": PYPROJECT})
    second = MODEL.format(hidden=64).replace("class Sentiment(", "class Second(").replace('"sentiment"', '"second"')
    _commit(where, "Add a model", {"model2.py": second, "pyproject.toml": PYPROJECT.replace(
        '"model.py:Sentiment"', '"model.py:Sentiment", "model2.py:Second"')})
    result = distbench(where, "check", "--against", "HEAD~1", "--threshold", "50%", "--allow-missing", *FAST)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    cells = _stored(where)["distbench"]["interleaved"]["cells"]
    assert cells["sentiment-default-custom"]["verdict"] == "same", cells["sentiment-default-custom"]
    failed = cells["second-default-custom"]
    assert failed["verdict"] == "failed" and "has no file model2.py" in json.dumps(failed), failed


def test_check_against_checks_out_the_revision_s_submodules_offline(tmp_path):
    """The model's width comes from a git submodule nested in another, which the change
    moves to a wider commit. The revision's worktree had no submodules: side A failed
    (ModuleNotFoundError), every check exit 3; then it had the outer one only. They are
    cloned from the repository's own copies (the submodules' remotes gone, as offline),
    and the wider commit is found slower."""
    file_ok = ("-c", "protocol.file.allow=always")
    inner, libs, where = (tmp_path / name for name in ("inner", "libs", "project"))
    for repo in (inner, libs, where):
        repo.mkdir()
        _git(repo, "init", "-q")
    _commit(inner, "Narrow", {"__init__.py": "", "widths.py": "WIDTH = 64\n"})
    _git(libs, *file_ok, "submodule", "add", "-q", f"file://{inner}", "inner")
    _commit(libs, "Inner", {"__init__.py": ""})
    _git(where, *file_ok, "submodule", "add", "-q", f"file://{libs}", "libs")
    _git(where, *file_ok, "submodule", "update", "-q", "--init", "--recursive")
    model = MODEL.format(hidden=0).replace("HIDDEN = 0", "from libs.inner.widths import WIDTH as HIDDEN")
    _commit(where, "Base", {"model.py": model, ".gitignore": "results/\n", "pyproject.toml": PYPROJECT})
    _commit(inner, "Wide", {"widths.py": "WIDTH = 2048\n"})
    _git(where / "libs" / "inner", *file_ok, "pull", "-q", "--ff-only", "origin", "HEAD")
    _commit(where / "libs", "Wider inner", {})   # a commit only the project's copy of libs has
    _commit(where, "Wider, from the nested submodule", {})
    shutil.rmtree(libs)   # the remotes are gone: only the repository's own copies have their commits
    shutil.rmtree(inner)
    result = distbench(where, "check", "--against", "HEAD~1", *FAST)
    assert result.returncode == 1 and "SLOWER: sentiment-default-custom" in result.stdout, \
        result.stdout[-3000:] + result.stderr[-2000:]
    assert "ModuleNotFoundError" not in result.stdout + result.stderr


FIT_COST_FAILS = """from distbench.scenarios import fit_cost


def measure(spec):
    raise RuntimeError("injected: the process that times fit's callback fails")


fit_cost.measure = measure
"""


def test_a_failed_process_of_the_overhead_benchmark_fails_the_run(tmp_path):
    """The process that times fit with and without the timing callback crashes (a
    sitecustomize every worker imports makes it raise); the overhead's pairs are measured.
    The record kept its "ok", so ``run --overhead`` exited 0 and pytest's overhead benchmark
    passed, whatever design.md says of a failed overhead process."""
    (tmp_path / "model.py").write_text(MODEL.format(hidden=8))
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "inject").mkdir()
    (tmp_path / "inject" / "sitecustomize.py").write_text(FIT_COST_FAILS)
    inject = {"PYTHONPATH": str(tmp_path / "inject")}
    # Under pytest, which reaches both places that read it: the overhead benchmark's test, and
    # the session's exit status (`run`'s own; a CLI run of it cost CI half a minute more).
    result = subprocess.run([sys.executable, "-m", "pytest", "--benchmark-only", "-p", "no:cacheprovider",
                             "--distbench-overhead", "--distbench-guard-seeds", "0", "--distbench-steps-per-epoch",
                             "20", "--distbench-timing-cost-pairs", "1"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=900, env={**_env(), **inject})
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "FAILED" in result.stdout and "test_harness_overhead" in result.stdout, result.stdout[-3000:]
    assert "1 passed" in result.stdout   # the cell itself
    assert "fit's timing callback: not measured: " in result.stdout and "injected: the process" in result.stdout
    assert "the harness adds" in result.stdout   # its pairs stand


def test_outside_a_git_repository_against_says_so_in_one_line(tmp_path):
    (tmp_path / "model.py").write_text(MODEL.format(hidden=8))
    result = distbench(tmp_path, "check", "--against", "HEAD~1", "--workload", "model.py:Sentiment",
                       "--strategy", "default", "--loop", "custom")
    assert result.returncode == 2 and "is not in a git repository" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "results").exists()


def test_an_ab_side_s_import_time_variable_reaches_tensorflow(project):
    """oneDNN off against on: TensorFlow reads TF_ENABLE_ONEDNN_OPTS when it loads, so the
    B side is only slower if its worker's TensorFlow was imported with it (a fork server of
    its own), not set after the fork. Each side's record says what its workers started with:
    B's TF_CPP_MIN_LOG_LEVEL, one of the variables distbench sets for its workers, had been
    left out, and the value A's workers had of it was stored nowhere."""
    where, _ = project
    result = distbench(where, "ab", "--a", "TF_ENABLE_ONEDNN_OPTS=1", "--b", "TF_ENABLE_ONEDNN_OPTS=0 TF_CPP_MIN_LOG_LEVEL=3",
                       "--workload", "reuters_cnn", "--data", "synthetic", "--steps-per-epoch", "30", *FAST,
                       "--format", "json")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "SLOWER: reuters_cnn-default-custom" in result.stderr
    document = json.loads(result.stdout)   # stdout is the one document, verdict included
    assert (document["result"], document["exit_status"]) == ("slower", 1)
    assert [c["verdict"] for c in document["cells"]] == ["slower"] and document["lines"][-1] == "RESULT: slower (exit 1)"
    assert document["saved"] and os.path.isfile(document["saved"])
    run = _stored(where)
    sides = run["distbench"]["interleaved"]
    assert sides["a"]["code"] == sides["b"]["code"] and sides["a"]["code"]["working_tree"]   # A's read {}
    assert sides["a"]["inherited"] == {"TF_CPP_MIN_LOG_LEVEL": "2"} and "inherited" not in sides["b"], sides
    for side, env in (("A", {"TF_ENABLE_ONEDNN_OPTS": "1"}),
                      ("B", {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3"})):
        record = next(b for b in run["benchmarks"] if b["param"].endswith(f"@{side}"))
        started = record["extra_info"]["distbench"]["repeats"][0]["started"]
        assert started["mode"] == "fork" and started["env"] == env, started
        for repeat in record["extra_info"]["distbench"]["repeats"]:   # its partner is no disturbance
            assert repeat["disturbance"]["disturbed"] is False and "partner" in repeat["disturbance"]["lockstep"]


@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_relative_data_and_a_module_reference_work_in_every_worker(project, spawn):
    """From the project's folder: ``--data data`` and ``model:Sentiment``, in a worker of the
    default strategy and in both local workers of multi_worker. A thread-pool size exported in
    the shell is what the record's ``threads`` says where tf.config left that pool at 0 (it
    read 0, TensorFlow's default), and a size distbench sets wins over it, as in TensorFlow."""
    where, _ = project
    result = distbench(where, "run", "--workload", "model:Sentiment", "--data", "data", "--strategy", "default",
                       "--strategy", "multi_worker", "--guard-seeds", "0", "--steps-per-epoch", "10",
                       env={"DISTBENCH_SPAWN": spawn, "TF_NUM_INTEROP_THREADS": "2"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    run = _stored(where)
    records = {b["param"]: b["extra_info"]["distbench"]["repeats"][0] for b in run["benchmarks"]}
    assert set(records) == {"sentiment-default-custom", "sentiment-multi_worker-custom"}, run["distbench"].get(
        "unmeasured")
    for record in records.values():
        assert record["data"]["source"] == f"folder:{where / 'data'}"
        assert record["config"]["plugins"] == ["workload=model:Sentiment"]
    started = records["sentiment-default-custom"]["started"]
    assert {k: started[k] for k in ("mode", "env", "cwd")} == {"mode": spawn, "env": {}, "cwd": str(where)}
    assert records["sentiment-default-custom"]["threads"] == {
        "intra_op": 0, "inter_op": 2, "from_env": {"inter_op": "TF_NUM_INTEROP_THREADS"}}
    assert records["sentiment-multi_worker-custom"]["threads"] == {"intra_op": 1, "inter_op": 1}   # its share
    assert ("server_pid" in started) == (spawn == "fork")


@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_a_project_module_named_like_python_s_own_is_named_under_fork_and_exec(tmp_path, spawn):
    """The project's ``profile.py``: under fork the model got Python's ``profile`` (imported
    before it), under exec Keras got the project's; two unrelated errors, neither naming the
    file. Both now say which file and what to do."""
    (tmp_path / "profile.py").write_text("HIDDEN = 8\n")
    (tmp_path / "model.py").write_text(MODEL.replace("HIDDEN = {hidden}", "from profile import HIDDEN"))
    result = distbench(tmp_path, "run", "--workload", "model.py:Sentiment", "--strategy", "default", "--loop",
                       "custom", "--data", "synthetic", "--guard-seeds", "0", "--steps-per-epoch", "10",
                       env={"DISTBENCH_SPAWN": spawn})
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-3000:]
    assert (f"the project's {tmp_path / 'profile.py'} has the name of Python's own module 'profile'"
            in result.stderr and "rename it" in result.stderr), result.stderr
    assert not (tmp_path / "results").exists()


def test_tune_accepts_a_reference(project):
    where, _ = project
    result = distbench(where, "tune", "--workload", "model.py:Sentiment", "--repeats", "1", "--guard-seeds", "0",
                       "--confirm-pairs", "0", "--steps-per-epoch", "10")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "sentiment-default-custom" in result.stdout and "Unknown workload" not in result.stderr


PACKAGE_MODEL = MODEL.replace("HIDDEN = {hidden}", "from helpers import HIDDEN   # the project's top folder")
PACKAGE_PYPROJECT = PYPROJECT.replace('"model.py:Sentiment"', '"models.sentiment:Sentiment"')


@pytest.fixture
def package_project(tmp_path):
    """A project whose model is a module of its package, importing a module at the project's
    top; the commands are typed in a sub-folder (``notebooks/``)."""
    where = tmp_path / "package project"
    where.mkdir()
    _git(where, "init", "-q")
    _commit(where, "Base", {"models/__init__.py": "", "models/sentiment.py": PACKAGE_MODEL,
                            "helpers.py": "HIDDEN = 256\n", "pyproject.toml": PACKAGE_PYPROJECT,
                            "notebooks/README.md": "notebooks\n", ".gitignore": "results/\n"})
    return where


@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_the_matrix_file_s_module_reference_imports_from_its_folder_in_a_sub_folder(package_project, spawn):
    """``models.sentiment:Sentiment`` in the matrix file means the project's package from
    any folder the command is typed in, in the parent and in every worker."""
    result = distbench(package_project / "notebooks", "run", "--guard-seeds", "0", "--steps-per-epoch", "10",
                       env={"DISTBENCH_SPAWN": spawn})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    run = _stored(package_project)   # results/ beside the matrix file, as pytest's
    (record,) = [b["extra_info"]["distbench"]["repeats"][0] for b in run["benchmarks"]]
    assert record["config"]["plugins"] == [f"workload=models.sentiment:Sentiment@{package_project}"]
    assert record["started"]["mode"] == spawn and record["started"]["cwd"] == str(package_project / "notebooks")


def test_check_against_from_a_sub_folder_imports_each_version_s_own_package(package_project):
    """The working tree widens the hidden layer in ``helpers.py`` (not committed): side A
    imports the revision's ``helpers`` from its worktree, so B is found slower."""
    (package_project / "helpers.py").write_text("HIDDEN = 1024\n")
    result = distbench(package_project / "notebooks", "check", "--against", "HEAD", *FAST)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "SLOWER: sentiment-default-custom" in result.stdout
    run = _stored(package_project)
    plugins = {b["param"][-1]: b["extra_info"]["distbench"]["repeats"][0]["config"]["plugins"] for b in run["benchmarks"]}
    assert plugins["B"] == [f"workload=models.sentiment:Sentiment@{package_project}"]
    (a,) = plugins["A"]
    assert a.startswith("workload=models.sentiment:Sentiment@/") and str(package_project) not in a


def test_check_against_refuses_a_matrix_file_above_the_repository_that_imports_from_it(tmp_path):
    """A distbench.toml above the repository (outside git) naming ``repo.models...``: the
    revision's side would import the working tree's code from there, so the comparison
    would be of one version with itself. Refused before anything runs."""
    outer = tmp_path / "outer"
    repo = outer / "repo"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q")
    _commit(repo, "Base", {"__init__.py": "", "models/__init__.py": "", "models/sentiment.py": MODEL.format(hidden=64)})
    (outer / "distbench.toml").write_text('workloads = ["repo.models.sentiment:Sentiment"]\nstrategies = ["default"]\n'
                                          'loops = ["custom"]\ndata = "synthetic"\n')
    result = distbench(repo, "check", "--against", "HEAD", timeout=300)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"imports from {outer}, the folder of a matrix file outside the repository {repo}" in result.stderr
    assert "[pair" not in result.stdout and not list(tmp_path.rglob("results/*/*.json"))   # nothing ran or was stored
    assert len(_git(repo, "worktree", "list").splitlines()) == 1


HELPER = """import json
from pathlib import Path

WIDTH = {width}
RATE = json.loads(Path(__file__).with_name("settings.json").read_text())["learning_rate"]
"""
# The optimizer's settings from a module imported only when the optimizer is made.
OPTIMIZER = """
    def optimizer(self):
        import keras
        from hparams import BETA_1

        return keras.optimizers.Nadam(learning_rate=RATE, beta_1=BETA_1)
"""


def test_stored_runs_see_what_the_model_reads_and_not_the_project_s_place(project, tmp_path):
    """What a stored run's identity covers, computed in the worker: a width moved to
    ``helper.py`` and changed there makes the runs different measurements, named (the
    module's own hash stays the same); the same code and data run from a copy of the
    project elsewhere (a file reference: its module is named after its path; its data
    folder another absolute path), and by a fresh interpreter instead of the fork server
    (whose Keras once read the project's ``matplotlibrc`` before the cell began), compares
    with the run before it; one document of the data folder edited in place, a learning
    rate changed in the settings file ``helper.py`` reads, and a setting changed in a
    module the optimizer imports when it is made make them different measurements again,
    each named."""
    where, _ = project
    args = ["run", "--workload", "model.py:Sentiment", "--data", "data", "--strategy", "default", "--loop", "custom",
            "--repeats", "1", "--guard-seeds", "0", "--steps-per-epoch", "8", "--eval-examples", "64", "--no-peak",
            "--results", str(where / "results")]
    model = (where / "model.py").read_text().replace("HIDDEN = 512", "from helper import RATE, WIDTH as HIDDEN")
    model = model.replace("\n    def build_model", OPTIMIZER + "\n    def build_model")
    settings = '{"learning_rate": 0.001}\n'
    elsewhere = tmp_path / "moved"
    document = sorted((where / "data" / "train" / "pos").glob("*.txt"))[0]

    def edit_a_document_the_settings_and_the_optimizer():
        document.write_text(document.read_text() + " " + sorted(document.parent.glob("*.txt"))[1].read_text())
        (where / "settings.json").write_text(settings.replace("0.001", "0.01"))
        (where / "hparams.py").write_text("BETA_1 = 0.8\n")

    for step in ({"model.py": model, "helper.py": HELPER.format(width=512), "settings.json": settings,
                  "hparams.py": "BETA_1 = 0.9\n", "matplotlibrc": "backend: Agg\n"},
                 {"helper.py": HELPER.format(width=128)}, "move", "edit"):
        if step == "move":
            shutil.copytree(where, elsewhere, ignore=shutil.ignore_patterns("results"))
        elif step == "edit":
            edit_a_document_the_settings_and_the_optimizer()
        else:
            _commit(where, "Edit", step)
        result = distbench(elsewhere if step == "move" else where, *args,
                           env={"DISTBENCH_SPAWN": "exec"} if step == "move" else None)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    records = [json.loads(p.read_text())["benchmarks"][0]["extra_info"]["distbench"]["repeats"][0]
               for p in sorted((where / "results").glob("*/*.json"))]
    assert [r["started"]["mode"] for r in records] == ["fork", "fork", "exec", "fork"]
    codes = [r["definition"] for r in records]
    examples = [r["data"]["fingerprint"] for r in records]
    read = [c.pop("files") for c in codes]
    assert codes[0]["workload"] == codes[1]["workload"] and codes[0]["workload_code"] != codes[1]["workload_code"]
    assert codes[1] == codes[2] and codes[2]["workload_code"] != codes[3]["workload_code"]
    assert records[1]["config"]["data"] != records[2]["config"]["data"]   # the moved folder's path
    assert examples[0] == examples[1] == examples[2] != examples[3]
    assert list(read[0]) == ["settings.json"] and read[0] == read[1] == read[2] != read[3]
    changed = distbench(where, "compare", "1", "2", "--format", "json")
    moved = distbench(where, "compare", "2", "3", "--format", "json")
    edited = distbench(where, "compare", "2", "4", "--format", "json")
    assert f"workload code {codes[0]['workload_code']} -> {codes[1]['workload_code']}" in changed.stdout, changed.stdout
    assert "not comparable" not in moved.stdout and moved.returncode == 0, moved.stdout + moved.stderr
    for part in (f"data examples {examples[1]} -> {examples[3]}",
                 f"file settings.json {read[1]['settings.json']} -> {read[3]['settings.json']}",
                 f"workload code {codes[2]['workload_code']} -> {codes[3]['workload_code']}"):
        assert part in edited.stdout, edited.stdout


def test_check_against_refuses_a_revision_side_that_imports_the_working_tree_s_package(tmp_path):
    """A src-layout package reached through an absolute PYTHONPATH (as through an editable
    install): the revision's worker imported the working tree's ``mypkg``, both sides ran
    the same code, and a slower working tree read ``same``. Now side A's worker refuses, the
    cell fails (exit 3); the relative PYTHONPATH the refusal suggests finds it slower."""
    where = tmp_path / "src project"
    where.mkdir()
    _git(where, "init", "-q")
    _commit(where, "Base", {"src/mypkg/__init__.py": "", "src/mypkg/model.py": MODEL.format(hidden=256),
                            "pyproject.toml": PYPROJECT.replace('"model.py:Sentiment"', '"mypkg.model:Sentiment"'),
                            ".gitignore": "results/\n"})
    (where / "src" / "mypkg" / "model.py").write_text(MODEL.format(hidden=1024))   # not committed: slower
    refused = distbench(where, "check", "--against", "HEAD", *FAST, env={"PYTHONPATH": str(where / "src")})
    assert refused.returncode == 3, refused.stdout[-3000:] + refused.stderr[-2000:]
    assert "\nPASS" not in refused.stdout and "RESULT: pass" not in refused.stdout
    out = refused.stdout.replace("\n    ", " ")
    assert "imported mypkg.model from the working tree" in out and "(PYTHONPATH=src)" in out, out[-3000:]
    found = distbench(where, "check", "--against", "HEAD", *FAST, env={"PYTHONPATH": "src"})
    assert found.returncode == 1 and "SLOWER: sentiment-default-custom" in found.stdout, \
        found.stdout[-3000:] + found.stderr[-2000:]
    head = _git(where, "rev-parse", "HEAD")[:8]   # the slower model is not committed, and B says so
    assert f"\nB: this working tree (commit {head} + uncommitted changes)\n" in found.stdout, found.stdout[-3000:]


LOOP = """from distbench.loops.custom import CustomLoop


class Steady(CustomLoop):
    name = "steady"
"""


def test_check_against_refuses_a_revision_side_that_imports_the_working_tree_s_loop(tmp_path):
    """The workload is a file (each side reads its own checkout's); the loop is the user's,
    from a package reached through an absolute PYTHONPATH (as through an editable install).
    Only the workload's modules were checked: side A ran the working tree's loop, and a loop
    the change made slower read ``same``. Side A's worker now refuses it: exit 3."""
    where = tmp_path / "loop project"
    where.mkdir()
    _git(where, "init", "-q")
    _commit(where, "Base", {"model.py": MODEL.format(hidden=64), "src/mypkg/__init__.py": "",
                            "src/mypkg/loops.py": LOOP, ".gitignore": "results/\n",
                            "pyproject.toml": PYPROJECT.replace('loops = ["custom"]', 'loops = ["mypkg.loops:Steady"]')})
    refused = distbench(where, "check", "--against", "HEAD", *FAST, env={"PYTHONPATH": str(where / "src")})
    assert refused.returncode == 3, refused.stdout[-3000:] + refused.stderr[-2000:]
    assert "\nPASS" not in refused.stdout and "RESULT: pass" not in refused.stdout
    out = refused.stdout.replace("\n    ", " ")
    assert "imported mypkg.loops from the working tree" in out, out[-3000:]
