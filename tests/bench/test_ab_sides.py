"""A side of ``ab`` is checked as ``run`` checks its own options: before any worker starts,
in one line that names the side, and nothing is stored."""

import os
import textwrap

import pytest
from distbench.cli.main import main
from distbench.launchers import process
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
