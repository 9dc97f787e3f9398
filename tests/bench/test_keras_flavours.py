"""The Keras axis: keras3 or tf_keras (Keras 2) per cell, each in a process started for it."""

import math

import pytest
from distbench.core import keras_flavour
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.launchers import cluster
from distbench.launchers import process as launcher
from distbench.session import options
from distbench.session.side import parse_side
from distbench.session.plan import build_cells, skip_reason
from distbench.strategies import hardware
from distbench.workloads.reuters_cnn import ReutersCnn

from tests.processes import gone


def test_the_flavour_names_the_cell_and_the_guard_reference_is_keras3():
    spec = CellSpec("reuters_cnn", "multi_worker", "fit", keras="tf_keras")
    assert spec.id == "reuters_cnn-multi_worker-fit-tf_keras" and spec.label == "fit-tf_keras"
    assert CellSpec("reuters_cnn", "default", "fit").id == "reuters_cnn-default-fit"   # Keras 3 ids unchanged
    assert spec.plain("default", "fit").keras == "keras3"
    assert not CellSpec("reuters_cnn", "default", "fit", keras="tf_keras").is_reference
    with pytest.raises(UserError, match="Unknown Keras 'keras2'. Known: keras3, tf_keras"):
        CellSpec("reuters_cnn", "default", "fit", keras="keras2").validate()


def test_unnamed_flavours_are_keras3_and_both_across_processes():
    cells = {c.id for c in build_cells(["reuters_cnn", "matmul"], ["default", "multi_worker"], ["fit"])}
    assert cells == {"reuters_cnn-default-fit", "reuters_cnn-multi_worker-fit", "reuters_cnn-multi_worker-fit-tf_keras",
                     "matmul-default"}   # matmul times devices one process hands it
    named = {c.id for c in build_cells(["reuters_cnn"], ["default", "multi_worker"], ["custom"],
                                       keras_names=["tf_keras"])}
    assert named == {"reuters_cnn-default-custom-tf_keras", "reuters_cnn-multi_worker-custom-tf_keras"}


def test_a_workload_says_which_keras_it_supports_and_a_missing_package_names_its_install(monkeypatch):
    hw = hardware.detect()
    spec = CellSpec("reuters_cnn", "default", "fit", keras="tf_keras")
    assert skip_reason(spec, hw) is None
    monkeypatch.setattr(ReutersCnn, "keras_flavours", ("keras3",))
    assert skip_reason(spec, hw).startswith("reuters_cnn: written for keras3, not tf_keras")
    # Keras 3's missing loop across processes pointed to --keras tf_keras, which this workload lacks.
    fit = skip_reason(CellSpec("reuters_cnn", "multi_worker", "fit"), hw)
    assert "tf_keras measures it" not in fit and fit.endswith("(reuters_cnn is written for keras3 only)"), fit
    monkeypatch.undo()
    assert skip_reason(CellSpec("reuters_cnn", "multi_worker", "fit"), hw).endswith("; --keras tf_keras measures it")
    monkeypatch.undo()
    monkeypatch.setattr(keras_flavour.importlib.util, "find_spec", lambda name: None)
    assert skip_reason(spec, hw) == "tf_keras: the tf-keras package is not installed; pip install 'tf-keras~=2.21.0'"


def test_a_side_changes_its_keras_with_the_option_not_the_variable():
    assert options.spec_changes(["--keras", "tf_keras"]) == {"keras": "tf_keras"}
    with pytest.raises(UserError, match="one --keras per side"):
        options.spec_changes(["--keras", "tf_keras", "--keras", "keras3"])
    with pytest.raises(UserError, match="TF_USE_LEGACY_KERAS is the cell's Keras flavour; give --keras tf_keras"):
        parse_side("B", "TF_USE_LEGACY_KERAS=1", options.spec_changes)


def test_each_worker_starts_with_its_cell_s_flavour_whatever_the_shell_says(monkeypatch):
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
    keras3 = launcher.cell_env(CellSpec("reuters_cnn", "default", "fit"), {"A": "1"})
    assert keras3 == {"A": "1", "TF_USE_LEGACY_KERAS": "0"}
    assert launcher.cell_env(CellSpec("reuters_cnn", "default", "fit", keras="tf_keras"), None) == {
        "TF_USE_LEGACY_KERAS": "1"}


def test_a_process_whose_tf_keras_is_another_flavour_refuses_the_cell(tiny):
    from distbench.scenarios.tasks import run_cell

    # This process imported TensorFlow without TF_USE_LEGACY_KERAS: its tf.keras is Keras 3.
    with pytest.raises(UserError, match="This worker's tf.keras is keras3, but the cell asks for tf_keras"):
        run_cell(tiny(keras="tf_keras"))


@pytest.mark.slow
@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_every_loop_trains_under_tf_keras_in_a_process_started_for_it(tiny, spawn, monkeypatch):
    """The record's Keras is read from the worker's tf.keras module: a worker that only set
    the variable after TensorFlow's import would name keras here (and refuse the cell)."""
    monkeypatch.setenv("DISTBENCH_SPAWN", spawn)
    # The custom loop under tf_keras in a forked worker: tests/test_any_model.py's losses test.
    cells = [("default", "fit"), ("virtual", "train_on_batch")] if spawn == "fork" else [
        ("default", "train_on_batch")]
    for strategy, loop in cells:
        record = launcher.launch(tiny("multibranch", strategy, loop, keras="tf_keras", eval_examples=64))
        assert record["status"] == "ok", record.get("reason")
        assert record["keras"]["flavour"] == "tf_keras" and record["keras"]["package"] == "tf-keras"
        assert record["cell"].endswith("-tf_keras") and record["started"]["mode"] == spawn
        assert 0 <= record["accuracy"]["test"]["auc"] <= 1 and record["accuracy"]["test"]["examples"] == 64
    # Keras 2 splits a plain global batch across replicas itself (and refuses per-replica values).
    if spawn == "fork":
        assert record["batch"]["per_replica"] == 16 and record["loop"]["settings"]["per_replica_feed"] is False
    keras3 = launcher.launch(tiny("multibranch", "default", "custom", eval_examples=64))
    assert keras3["keras"]["package"] == "keras" and keras3["keras"]["version"].startswith("3.")


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["fit", "train_on_batch"])
def test_tf_keras_runs_the_keras_loops_under_multi_worker(tiny, loop):
    record = cluster.launch_cluster(tiny("reuters_cnn", "multi_worker", loop, keras="tf_keras", steps_per_epoch=8))
    assert record["status"] == "ok", record.get("reason")
    assert record["keras"]["package"] == "tf-keras"
    assert record["strategy"]["workers"] == 2 and record["strategy"]["replicas"] == 2
    assert record["batch"] == {"global": 32, "per_replica": 16, "replicas": 2, "scaling": "strong"}
    assert all(gone(w["pid"]) for w in record["workers"])
    # Synthetic labels of 46 classes, 8 steps: the training loss stays near log(46), 3.83.
    # tf-keras summed train_on_batch's logs over the workers (2x here; 1.825 accuracy on 4).
    assert abs(record["accuracy"]["train_loss"] - math.log(46)) < 0.5, record["accuracy"]


def test_the_matrix_file_names_the_keras_and_a_wrong_one_is_refused(tmp_path):
    from distbench.session import matrix_file
    from distbench.session.session import Session

    (tmp_path / "distbench.toml").write_text('workloads = ["reuters_cnn"]\nstrategies = ["default"]\n'
                                             'loops = ["custom"]\nkeras = ["tf_keras"]\nguard_seeds = 0\n')
    values = matrix_file.read(tmp_path / "distbench.toml")
    assert values["keras"] == ["tf_keras"]
    assert [c.id for c in Session.from_options(values).plan] == ["reuters_cnn-default-custom-tf_keras"]
    with pytest.raises(UserError, match="Unknown Keras 'keras2'. Known: keras3, tf_keras"):
        Session.from_options({**values, "keras": ["keras2"]})
    # In the file, refused when it is read, naming it (it was refused later, without the file).
    (tmp_path / "distbench.toml").write_text('keras = ["keras2"]\n')
    with pytest.raises(UserError) as refused:
        matrix_file.read(tmp_path / "distbench.toml")
    assert str(refused.value) == f"{tmp_path / 'distbench.toml'}: keras = 'keras2' is not one of keras3, tf_keras."
    (tmp_path / "distbench.toml").write_text('matmul_shape = "1,2"\n')
    with pytest.raises(UserError, match=f"^{tmp_path / 'distbench.toml'}: Bad matmul shape '1,2': give quick, seed or"):
        matrix_file.read(tmp_path / "distbench.toml")
