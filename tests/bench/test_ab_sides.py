"""A side of ``ab`` is checked as ``run`` checks its own options: before any worker starts,
in one line that names the side, and nothing is stored."""

import os
import subprocess
import sys
import textwrap

import pytest
from distbench.cli.main import main
from distbench.launchers import process
from distbench.storage.files import Storage, load
from distbench.workloads.registry import WORKLOADS

# A user's own workload (docs/own-model.md): ``--data`` is a file its data() reads (a .npz of
# x and y), or anything else for examples of its own.
MODEL = textwrap.dedent('''
    import numpy as np

    import distbench
    from distbench import Workload


    class Small(Workload):
        name = "{name}"

        def build_model(self):
            keras = distbench.keras_api()
            return keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(3, activation="softmax")])

        def data(self, source, seed):
            if source.endswith(".npz"):
                found = np.load(source)
                x, y = found["x"], found["y"]
            else:
                rng = np.random.default_rng(seed)
                x, y = rng.normal(size=(256, 8)).astype(np.float32), rng.integers(0, 3, 256).astype(np.int32)
            return (x[:192], y[:192]), (x[192:], y[192:])

        def loss(self):
            return distbench.keras_api().losses.SparseCategoricalCrossentropy()
''')

CELL = ["--strategy", "default", "--loop", "custom"]


@pytest.fixture
def project(tmp_path, request, monkeypatch):
    """A project with its own workload, the command typed in its sub-folder ``sub``; no
    worker may start (one that does fails the test)."""
    name = f"small_{request.node.name[-10:].replace('[', '_').replace(']', '').replace('-', '_')}"
    (tmp_path / f"model_{name}.py").write_text(MODEL.format(name=name))
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")

    def no_worker(*args, **kwargs):
        raise AssertionError("a worker started before the sides were checked")

    monkeypatch.setattr(process, "spawn", no_worker)
    yield tmp_path, [f"../model_{name}.py:Small", name]
    if name in WORKLOADS:
        WORKLOADS.unregister(name)


def _error(capsys, argv) -> str:
    """The one line a refused command printed (exit 2), without ``distbench: error: ``."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("distbench: error: ") and err.count("\n") == 1, (code, err)
    return err[len("distbench: error: "):].rstrip("\n")


def _stored(where) -> list[str]:
    return [f for _, _, files in os.walk(where) for f in files]


def test_a_side_s_data_is_refused_as_run_refuses_it_and_read_from_where_the_command_was_typed(capsys, project):
    root, (ref, _) = project
    workload = ["--workload", ref, *CELL, "--results", "results"]
    said_by_run = _error(capsys, ["run", *workload, "--data", "nosuch"])
    assert said_by_run.startswith(f"Unknown data source '{root / 'sub' / 'nosuch'}'. Valid: auto, keras, synthetic")
    said = _error(capsys, ["ab", *workload, "--max-pairs", "2", "--min-pairs", "2", "--b", "--data nosuch"])
    assert said == f"Side B (--data nosuch): {said_by_run}"
    assert _stored(root / "sub" / "results") == []   # nothing stored


@pytest.mark.parametrize("word, name", [("1X=2", "1X"), ("X-Y=2", "X-Y")])
def test_a_side_s_environment_variable_must_be_a_variable_name(capsys, project, word, name):
    root, (ref, _) = project
    said = _error(capsys, ["ab", "--workload", ref, *CELL, "--max-pairs", "2", "--min-pairs", "2", "--b", word,
                           "--results", "results"])
    assert said == (f"Side B ({word}): {name!r} is not an environment variable name; a name is a letter or _ "
                    "followed by letters, digits or _ ([A-Za-z_][A-Za-z0-9_]*), e.g. TF_ENABLE_ONEDNN_OPTS=0.")
    assert _stored(root / "sub" / "results") == []


def test_a_text_workload_s_side_folder_is_refused_by_its_layout_before_anything_runs(capsys, project):
    root, _ = project
    (root / "texts" / "only_one_class").mkdir(parents=True)
    workload = ["--workload", "reuters_cnn", *CELL, "--results", "results"]
    said_by_run = _error(capsys, ["run", *workload, "--data", "../texts"])
    assert said_by_run.startswith(f"Data folder {root / 'texts'} has 1 sub-folder(s); expected at least 2 classes")
    said = _error(capsys, ["ab", *workload, "--a", "--data ../texts", "--b", ""])
    assert said == f"Side A (--data ../texts): {said_by_run}"


def _distbench(where, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DISTBENCH_SPAWN")}
    return subprocess.run([sys.executable, "-m", "distbench", *args], cwd=where, capture_output=True, text=True,
                          timeout=600, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"})


SHORT = ["--epochs", "1", "--steps-per-epoch", "12", "--warmup-steps", "2", "--global-batch", "16",
         "--eval-examples", "64", "--timing-cost-pairs", "0", "--max-pairs", "2", "--min-pairs", "2"]


@pytest.mark.slow
def test_a_side_s_own_data_that_its_workload_cannot_read_is_refused_and_readable_data_runs(tmp_path):
    """The real command, typed in a sub-folder: side B's ``--data ../bad.npz`` (not a .npz)
    is refused by the workload's preflight, naming side B, and nothing is stored; side B's
    ``--data ../good.npz`` is read there by B's workers, as an absolute path."""
    import numpy as np

    name = "small_sides"
    (tmp_path / "model.py").write_text(MODEL.format(name=name))
    (tmp_path / "sub").mkdir()
    (tmp_path / "bad.npz").write_text("not an archive")
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "good.npz", x=rng.normal(size=(256, 8)).astype(np.float32),
             y=rng.integers(0, 3, 256).astype(np.int32))
    argv = ["ab", "--workload", "../model.py:Small", *CELL, *SHORT, "--results", "results"]
    refused = _distbench(tmp_path / "sub", *argv, "--b", "--data ../bad.npz")
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert refused.stderr.startswith(f"distbench: error: Side B (--data ../bad.npz): {name}: checking its data and "
                                     "model failed: ") and refused.stderr.count("\n") == 1, refused.stderr[-2000:]
    assert _stored(tmp_path / "sub" / "results") == []
    ran = _distbench(tmp_path / "sub", *argv, "--b", "--data ../good.npz")
    assert ran.returncode in (0, 1, 3), ran.stderr[-2000:]   # a verdict, whichever
    (saved,) = Storage(tmp_path / "sub" / "results").runs()
    side_b = load(saved).cells()[f"{name}-default-custom@B"]
    assert [r["status"] for r in side_b] == ["ok", "ok"], side_b[0].get("reason")
    assert {r["config"]["data"] for r in side_b} == {str(tmp_path / "good.npz")}


def test_the_devices_are_listed_by_a_side_s_fork_server_when_both_sides_set_an_environment(monkeypatch):
    """``ab`` with an environment on each side started the default environment's fork server
    too, a third TensorFlow import, only to list the devices; a side's server lists them now,
    unless that side changes which devices a process sees."""
    from distbench.session import paired_run
    from distbench.session.side import Side
    from distbench.session.suite import Suite
    from distbench.strategies.hardware import Hardware

    on, off = Side("A", "on", env={"TF_ENABLE_ONEDNN_OPTS": "1"}), Side("B", "off", env={"TF_ENABLE_ONEDNN_OPTS": "0"})
    assert paired_run.listing_env(on, off) == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert paired_run.listing_env(Side("A", "as given"), off) == {}   # A's cells start from the default server
    hidden = Side("A", "no GPU", env={"CUDA_VISIBLE_DEVICES": ""})
    assert paired_run.listing_env(hidden, off) == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    asked = []
    cpu = Hardware(cpus=2, gpus=(), tpu_address=None, local_tpu_devices=(), libtpu_installed=False)
    monkeypatch.setattr(process, "machine", lambda env=None: asked.append(env) or cpu)
    assert Suite(listing_env=paired_run.listing_env(on, off)).hw is cpu
    assert asked == [{"TF_ENABLE_ONEDNN_OPTS": "1"}]


def test_a_side_at_a_setting_s_default_is_a_side_when_the_strategy_reads_the_setting():
    """``ab --a "--workers 2" --b "--workers 4" --strategy multi_worker`` was refused: side A
    changed nothing from the default, so "no cell of this selection reads --workers"; and
    ``--connect-deadline`` was named ``--connect-deadline-s``."""
    from distbench.core.config import CellSpec
    from distbench.core.errors import UserError
    from distbench.session import options
    from distbench.session.side import parse_side, validate_side

    cells = [CellSpec("reuters_cnn", "multi_worker", "custom")]
    for text in ("--workers 2", "--workers 4", "--connect-deadline 180"):
        validate_side(parse_side("A", text, options.spec_changes), cells)   # not refused
    with pytest.raises(UserError, match=r"^Side B \(--connect-deadline 60\): no cell of this selection reads "
                                        r"--connect-deadline \(only "):
        validate_side(parse_side("B", "--connect-deadline 60", options.spec_changes),
                      [CellSpec("reuters_cnn", "default", "custom")])


def test_xla_is_a_run_option_an_ab_side_and_a_matrix_file_setting(tmp_path, monkeypatch, capsys):
    """tune ranked "fit (steps/exec 10, XLA on)" first, and nothing else could set XLA: ab's
    --b "--jit-compile" was an unrecognized argument, and run had no option for it."""
    from distbench.session import options
    from distbench.session.session import Session

    assert options.spec_changes(["--jit-compile"]) == {"jit_compile": True}
    assert options.spec_changes(["--intra-op-threads", "1"]) == {"intra_op_threads": 1}   # a side without it: unchanged
    argv = ["--workload", "reuters_cnn", "--strategy", "default", "--loop", "custom", "--data", "synthetic",
            "--guard-seeds", "0"]
    parser = __import__("distbench.cli.main", fromlist=["build_parser"]).build_parser()
    plan = Session.from_options(options.from_namespace(parser.parse_args(["run", *argv, "--jit-compile"]))).plan
    assert [c.id for c in plan] == ["reuters_cnn-default-custom-xla"]
    (tmp_path / "distbench.toml").write_text("jit_compile = true\n" + "\n".join(
        f'{k} = ["{v}"]' for k, v in (("workloads", "reuters_cnn"), ("strategies", "default"), ("loops", "custom"))))
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--data", "synthetic", "--steps-per-epoch", "20", "--guard-seeds", "0", "--no-peak",
                 "--timing-cost-pairs", "0", "--no-save"]) == 0
    assert "[1/1] reuters_cnn-default-custom-xla: ok" in capsys.readouterr().out
