"""Any Keras model from a user's project outside the checkout, through real workers: the
image example and the tabular one under default and virtual with all three loops (mirrored
on this CPU is one replica, as default: left out for CI's time), their guard
and time to target; a slow input pipeline found input-bound; data that does not fit
refused once for the run, before any timing."""

import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from distbench.core.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}   # distbench from its installation
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return {**env, **extra}


def _example(tmp_path, name):
    where = tmp_path / "elsewhere" / name
    shutil.copytree(os.path.join(ROOT, "examples", name), where, ignore=shutil.ignore_patterns("results", "__pycache__"))
    return where


def _distbench(project, *args, **env):
    return subprocess.run([sys.executable, "-m", "distbench", *args], cwd=project, capture_output=True, text=True,
                          timeout=900, env=_env(**env))


def _records(project) -> dict:
    """Every stored run's records in ``project``: cell id -> records."""
    found = {}
    for path in sorted((project / "results").glob("*/*.json")):
        for bench in json.loads(path.read_text())["benchmarks"]:
            info = bench["extra_info"]["distbench"]
            for record in info.get("repeats", [info]):
                found.setdefault(record["cell"], []).append(record)
    return found


# Two replicas once (the image example's); the tabular example's two-input pipeline across
# replicas is test_the_tabular_pipeline_trains_across_processes's.
STRATEGIES = {"image_model": ("default", "virtual"), "tabular_model": ("default",)}
LOOPS = ("fit", "train_on_batch", "custom")


FROZEN = """from distbench.loops.custom import CustomLoop


class Frozen(CustomLoop):
    name = "frozen"

    def gradients(self, grads):
        return [g * 0.0 for g in grads]
"""


@pytest.mark.parametrize("example, workload, metric, spawn", [
    ("image_model", "digits", "accuracy", "fork"),
    ("tabular_model", "diabetes", "mae", "exec"),
])
def test_an_example_runs_every_strategy_and_loop_with_its_guard_and_time_to_target(tmp_path, example, workload,
                                                                                   metric, spawn):
    """``spawn``: how the time-to-target workers start (the fork server's, or fresh interpreters).
    The project's model module runs a TensorFlow op when imported (``virtual``
    set their devices before the user's modules load: every such cell had failed). Beside the matrix, a loop of the project's own that never applies its gradients: the
    guard must flag it on the metric's bad side (below for accuracy, above for MAE)."""
    project = _example(tmp_path, example)
    (project / "frozen.py").write_text(FROZEN)
    with open(project / "model.py", "a") as model:   # the runtime starts at import, before a worker's set-up
        model.write("\nimport tensorflow as _tf\n\nSTARTED_AT_IMPORT = _tf.constant(0)\n")
    # One timing-cost pair: fit's timing callback measured around the project's own input (5 by default).
    strategies = [arg for s in STRATEGIES[example] for arg in ("--strategy", s)]
    result = _distbench(project, "run", "--no-peak", "--guard-seeds", "2", "--loop", "fit", "--loop", "train_on_batch",
                        "--loop", "custom", "--loop", "frozen.py:Frozen", "--timing-cost-pairs", "1", *strategies)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    records = _records(project)
    assert {c.split("-", 1)[1] for c in records if "init" not in c} == {
        f"{s}-{lp}" for s in STRATEGIES[example] for lp in (*LOOPS, "frozen")}
    for cell in (f"{s}-{lp}" for s in STRATEGIES[example] for lp in LOOPS):
        (record,) = records[f"{workload}-{cell}"]
        assert record["status"] == "ok", record.get("reason")
        assert math.isfinite(record["accuracy"]["test"][metric]) and record["accuracy"]["guard_metric"] == metric
        assert record["accuracy_guard"]["status"] in ("ok", "underpowered"), (cell, record["accuracy_guard"])
        assert record["input"]["wait_share"] is not None and record["data"]["source"] == "workload"
    if "virtual" in STRATEGIES[example]:
        assert records[f"{workload}-virtual-custom"][0]["batch"]["replicas"] == 2
    assert len(records[f"{workload}-default-fit-init1"]) == 1          # the guard's seed
    (frozen,) = records[f"{workload}-default-frozen"]
    guard, fit = frozen["accuracy_guard"], records[f"{workload}-default-fit"][0]
    assert guard["worse"] and guard["status"] == ("low" if metric == "accuracy" else "high"), guard
    lines = result.stdout.splitlines()
    heading = next(k for k, line in enumerate(lines) if line.startswith(f"{workload} (test: {metric})"))
    (row,) = [line for line in lines[heading:] if line.startswith("default-frozen ")]   # the summary's row
    assert row.endswith(guard["status"].upper()), result.stdout   # the summary's guard column
    repeats = 2 if spawn == "fork" else 1   # each seed run twice by the fork server's workers; once by fresh ones
    result = _distbench(project, "run", "--no-peak", "--target", "default", "--strategy", "default", "--loop", "custom",
                        "--guard-seeds", "2", "--repeats", str(repeats), DISTBENCH_SPAWN=spawn)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    (cell,) = [c for c in _records(project) if "-to_" in c]
    reached = [r["target"] for r in _records(project)[cell]]
    assert len(reached) == 2 * repeats and all(t["reached"] and t["metric"] == metric for t in reached), reached
    assert re.search(r"^ *default-custom .* 2 of 2 ", result.stdout, re.M), result.stdout   # 2 seeds
    if example == "image_model":   # the target run's page: its metrics are in Time to target, not missing
        assert _distbench(project, "report", "--out", "rep").returncode == 0
        page = (project / "rep" / "report.html").read_text()
        assert "This run measured time to target" in page and "has no test metric" not in page
    if example == "tabular_model":
        assert fit["data"]["kind"] == "tf.data" and fit["data"]["inputs"] == {"blood": "float32 (8,)",
                                                                              "demographics": "float32 (2,)"}
        assert fit["accuracy"]["guard_direction"] == "lower" and fit["input"]["at_most"]   # fit's: a bound
        assert fit["loop"]["timing_cost"]["pairs"] == 1
        listed = _distbench(project, "list")
        assert listed.returncode == 0 and re.search(r"^  diabetes +two-input MLP", listed.stdout, re.M), listed.stdout
    else:
        assert 0.05 < fit["data"]["majority_class_share"] < 0.2   # digits: 10 classes, about even


def test_a_reference_that_learns_nothing_is_said_not_read_as_ok(tmp_path):
    """Labels drawn apart from the images (55% one class): every cell, the reference's seeds
    too, learns the prior and scores the majority class's share. The custom cell inside
    that band had read "ok" (or "low power") beside a reference that learned nothing."""
    project = _example(tmp_path, "image_model")
    model = project / "model.py"
    model.write_text(model.read_text().replace(
        "        y = digits.target.astype(np.int32)\n",
        "        y = np.random.default_rng(7).choice(10, len(x), p=[0.55] + [0.05] * 9).astype(np.int32)\n"))
    result = _distbench(project, "run", "--no-peak", "--guard-seeds", "2", "--strategy", "default", "--loop", "fit",
                        "--timing-cost-pairs", "0")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    records = _records(project)
    (custom,) = records["digits-default-fit"]   # the reference's own cell: inside its band
    majority = custom["data"]["majority_class_share"]
    assert 0.45 < majority < 0.65 and custom["accuracy_guard"]["status"] == "chance", custom["accuracy_guard"]
    assert re.search(r"^default-fit .* REF AT CHANCE$", result.stdout, re.M), result.stdout
    assert re.search(rf"digits: THE REFERENCE DID NOT LEARN: accuracy 0\.\d+ over 2 seeds of digits-default-fit, "
                     rf"within 0\.02 of chance \({majority:.3f}, the test set's majority-class share\)",
                     " ".join(result.stdout.split())), result.stdout


def test_the_tabular_pipeline_trains_across_processes(tmp_path):
    """Named inputs from tf.data functions on two local workers and under parameter servers
    (whose workers read the pipeline's length at trace time); Keras 3's custom loop."""
    project = _example(tmp_path, "tabular_model")
    result = _distbench(project, "run", "--no-peak", "--strategy", "multi_worker", "--strategy", "parameter_server",
                        "--loop", "custom", "--keras", "keras3", "--guard-seeds", "0")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    records = _records(project)
    for cell in ("multi_worker-custom", "parameter_server-custom"):
        (record,) = records[f"diabetes-{cell}"]
        assert record["status"] == "ok", (cell, record.get("reason"))
        assert math.isfinite(record["accuracy"]["test"]["mae"]) and record["data"]["kind"] == "tf.data"
    (custom,) = records["diabetes-multi_worker-custom"]
    assert custom["batch"]["replicas"] == 2 and "every Nth element" in custom["input"]["sharding"]
    (ps,) = records["diabetes-parameter_server-custom"]   # its workers read copies, not shards
    assert ps["input"]["sharding"].startswith("each worker reads its own copy of the whole input"), ps["input"]


PIPELINES = '''
import time

import numpy as np

import distbench
from distbench import Workload

MS_PER_EXAMPLE = float({ms!r})


class Pipeline(Workload):
    """A wide MLP (about 5 ms a step here) on a tf.data pipeline of the user's own."""

    name = "{name}"

    def build_model(self):
        keras = distbench.keras_api()
        return keras.Sequential([keras.Input(shape=(256,)), keras.layers.Dense(1024, activation="relu"),
                                 keras.layers.Dense(1024, activation="relu"), keras.layers.Dense(1)])

    def data(self, source, seed):
        import tensorflow as tf

        rng = np.random.default_rng(seed)
        x, y = rng.standard_normal((512, 256)).astype(np.float32), rng.standard_normal((512, 1)).astype(np.float32)

        def slow(v):
            time.sleep(MS_PER_EXAMPLE / 1000)
            return v

        def make():
            ds = tf.data.Dataset.from_tensor_slices((x, y))
            if MS_PER_EXAMPLE:
                ds = ds.map(lambda a, b: (tf.ensure_shape(tf.py_function(slow, [a], tf.float32), (256,)), b))
            return ds

        return make, make

    def loss(self):
        return distbench.keras_api().losses.MeanSquaredError()
'''


def test_a_slow_map_in_the_user_s_pipeline_marks_its_cells_input_bound(tmp_path):
    project = tmp_path / "elsewhere" / "pipelines"
    project.mkdir(parents=True)
    (project / "slow.py").write_text(PIPELINES.format(ms=3, name="slow"))
    (project / "fast.py").write_text(PIPELINES.format(ms=0, name="fast"))
    result = _distbench(project, "run", "--no-peak", "--workload", "slow.py:Pipeline", "--workload", "fast.py:Pipeline",
                        "--strategy", "default", "--loop", "custom", "--loop", "fit",
                        "--global-batch", "16", "--epochs", "1", "--steps-per-epoch", "20", "--guard-seeds", "0",
                        "--eval-examples", "64", "--timing-cost-pairs", "0")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    found = {(r[0]["config"]["workload"], r[0]["config"]["loop"]): r[0]["input"] for r in _records(project).values()}
    for loop in ("custom", "fit"):   # get_next timed in the step; the pipeline alone (train_on_batch: as custom)
        assert found[("slow", loop)]["input_bound"], (loop, found[("slow", loop)])
        assert not found[("fast", loop)]["input_bound"], (loop, found[("fast", loop)])
    # 48 ms of sleeping per batch against a step of a few ms: most of the step waits.
    assert found[("slow", "custom")]["wait_share"] > 0.5 and found[("slow", "custom")]["method"].startswith("get_next")


BAD = '''
import numpy as np

import distbench
from distbench import Workload

rng = np.random.default_rng(0)
X, Y = rng.standard_normal((64, 8)).astype(np.float32), rng.integers(0, 3, 64).astype(np.int32)


class Base(Workload):
    name = "base"

    def build_model(self):
        keras = distbench.keras_api()
        return keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(3, activation="softmax")])

    def data(self, source, seed):
        return (X, Y), (X, Y)

    def loss(self):
        return distbench.keras_api().losses.SparseCategoricalCrossentropy()

    def metrics(self):
        return [distbench.keras_api().metrics.SparseCategoricalAccuracy(name="accuracy")]


class Diverges(Base):
    """NaN features from a tf.data pipeline: seen only as it runs (arrays are refused before)."""
    name = "diverges"

    def data(self, source, seed):
        import tensorflow as tf

        nan = np.full_like(X, np.nan)
        make = lambda: tf.data.Dataset.from_tensor_slices((nan, Y))
        return make, make


class OneNan(Base):
    """One NaN in one training example of a pipeline, as a corrupted data file has: every check passes,
    the weights turn NaN, and behind a hidden ReLU layer the loss Keras reports stays
    finite (these cells read "ok")."""
    name = "onenan"

    def build_model(self):
        keras = distbench.keras_api()
        return keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(16, activation="relu"),
                                 keras.layers.Dense(3, activation="softmax")])

    def data(self, source, seed):
        import tensorflow as tf

        x = X.copy()
        x[5, 3] = np.nan
        return (lambda: tf.data.Dataset.from_tensor_slices((x, Y))), (lambda: tf.data.Dataset.from_tensor_slices((X, Y)))


class CheckDies(Base):
    """Its process dies in the check before any timing (as a worker the machine kills would);
    its cells do not call the check."""
    name = "checkdies"

    def check(self, model, data):
        import os, signal

        os.kill(os.getpid(), signal.SIGKILL)


class FromFolder(Base):
    """Reads its own files from the --data folder."""
    name = "fromfolder"

    def data(self, source, seed):
        import os

        x = np.loadtxt(os.path.join(source, "x.csv"), delimiter=",", dtype=np.float32)
        y = np.loadtxt(os.path.join(source, "y.csv"), delimiter=",", dtype=np.int32)
        return (x, y), (x, y)


class FromRelativePath(Base):
    """Reads a file by a path relative to where the command is typed."""
    name = "fromrelativepath"

    def data(self, source, seed):
        x = np.loadtxt("data/x.csv", delimiter=",", dtype=np.float32)
        return (x, Y[:len(x)]), (x, Y[:len(x)])


class TwoOutputs(Base):
    name = "twooutputs"

    def build_model(self):
        keras = distbench.keras_api()
        inputs = keras.Input(shape=(8,))
        return keras.Model(inputs, {"cls": keras.layers.Dense(3, activation="softmax", name="cls")(inputs),
                                    "reg": keras.layers.Dense(1, name="reg")(inputs)})

    def data(self, source, seed):
        return (X, {"cls": Y, "reg": X[:, 0]}), (X, {"cls": Y, "reg": X[:, 0]})


class TwoOutputsTF(TwoOutputs):
    name = "twooutputstf"

    def data(self, source, seed):
        import tensorflow as tf

        make = lambda: tf.data.Dataset.from_tensor_slices((X, {"cls": Y, "reg": X[:, 0]}))
        return make, make


class ReturnsNone(Base):
    name = "returnsnone"

    def build_model(self):
        return None


class Subclassed(Base):
    """A subclassed model, with dropout (the loops call it with training=True)."""
    name = "subclassed"

    def build_model(self):
        keras = distbench.keras_api()

        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.hidden = keras.layers.Dense(16, activation="relu")
                self.dropout = keras.layers.Dropout(0.2)
                self.out = keras.layers.Dense(3, activation="softmax")

            def call(self, x, training=False):
                return self.out(self.dropout(self.hidden(x), training=training))

        return Net()


class SubTwoOut(Subclassed):
    """A subclassed model whose call returns two outputs (it declares none to count)."""
    name = "subtwoout"

    def build_model(self):
        model = super().build_model()
        model.call = lambda x, training=False: (model.out(model.hidden(x)), model.out(model.hidden(x)))
        return model


class SubNamedOut(SubTwoOut):
    name = "subnamedout"

    def build_model(self):
        model = super().build_model()
        model.call = lambda x, training=False: {"cls": model.out(model.hidden(x))}
        return model


class SubOneTuple(SubTwoOut):
    name = "subonetuple"

    def build_model(self):
        model = super().build_model()
        model.call = lambda x, training=False: (model.out(model.hidden(x)),)
        return model


class WeightedTF(Base):
    """A pipeline of (x, y, sample_weight) triples."""
    name = "weightedtf"

    def data(self, source, seed):
        import tensorflow as tf

        make = lambda: tf.data.Dataset.from_tensor_slices((X, Y, np.ones(len(X), np.float32)))
        return make, make


class NotBuilt(Subclassed):
    """A subclassed model that cannot take the examples it is given."""
    name = "notbuilt"

    def data(self, source, seed):
        return (X[:, :5], Y), (X[:, :5], Y)

    def build_model(self):
        model = super().build_model()
        model.call = lambda x, training=False: model.out(distbench.keras_api().ops.reshape(x, (-1, 8)))
        return model


class RaisesLate(Base):
    """Code of the user's that raises in a cell, past the check before the run."""
    name = "raiseslate"

    def optimizer(self):
        raise RuntimeError("the optimizer's settings are missing")


class NanFeatures(Base):
    name = "nanfeatures"

    def data(self, source, seed):
        x = X.copy()
        x[::3, 2] = np.nan
        return (x, Y), (X, Y)


class NoData(Subclassed):
    """A subclassed model and synthetic examples: of what shape?"""
    name = "nodata"

    def data(self, source, seed):
        return None


class BatchMeanLoss(Base):
    """A plain function that averages over the batch: one value, not one per example."""
    name = "batchmeanloss"

    def loss(self):
        keras = distbench.keras_api()
        return lambda y, p: keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, p))


class UnnamedLoss(Base):
    """Synthetic labels for a function whose name does not say its label form."""
    name = "unnamedloss"

    def data(self, source, seed):
        return None

    def loss(self):
        keras = distbench.keras_api()

        def scaled(y, p):
            return 2.0 * keras.losses.sparse_categorical_crossentropy(y, p)
        return scaled


class LabelsOutOfRange(Base):
    name = "labelsoutofrange"

    def data(self, source, seed):
        return (X, Y * 3), (X, Y)


class Few(Base):
    name = "few"

    def data(self, source, seed):
        return (X[:10], Y[:10]), (X, Y)


class Batched(Base):
    name = "batched"

    def data(self, source, seed):
        import tensorflow as tf

        make = lambda: tf.data.Dataset.from_tensor_slices((X, Y)).batch(8)
        return make, make
'''


# The refusals of a workload's check before a run: one worker checks it, and its one line is
# the run's error. The command line (below) for one refusal of the data, the parent's of a
# target, and one of the model; every message, in process (test_each_refusal_of_the_check_...).
REFUSED = {
    "Batched": "batched: the train examples have shape (None, 8): already batched; give unbatched examples of shape "
               "(8,) (distbench batches to the global batch itself).",
    "Few": "few: its training data has 10 examples, fewer than one global batch of 32; give --global-batch 10 or "
           "less, or more examples.",
    "LabelsOutOfRange": "labelsoutofrange: the train labels run from 0 to 6; the model's output has 3 classes, so a "
                        "class id must be 0 to 2.",
    "ReturnsNone": "returnsnone: build_model() returned None; return a Keras model, built (e.g. "
                   "keras.Sequential([keras.Input(shape=...), ...])).",
    "NotBuilt": "notbuilt: the model declares no inputs (a subclassed keras.Model), and calling it on two train "
                "examples (float32 (5,)) failed: ",
    "NanFeatures": "nanfeatures: 22 of the 64 train examples' features hold NaN or infinite values (row 0 the first); "
                   "give finite numbers (a model trained on them diverges).",
    "NoData": "nodata: build_model() returned a model that declares no inputs (a subclassed keras.Model): "
              "synthetic examples take the model's input shapes; start it with keras.Input(shape=...), or give the "
              "workload data() or a synthetic(seed) of its own.",
    "BatchMeanLoss": "batchmeanloss: loss() gives one value for 2 examples; the custom loop averages the values of "
                     "each example over the global batch: return a Keras loss object, or a function of values per "
                     "example, not reduced over the batch (e.g. tf.reduce_mean(..., axis=-1)).",
    "UnnamedLoss": "unnamedloss: distbench's synthetic labels (made in the form the loss's name, 'scaled', says: "
                   "'sparse' class ids, 'binary' or 'hinge' 0/1, 'categorical' one-hot, else values to regress) of "
                   "shape (3,) (float32) do not fit the model's output (3,) under function: ",
    "TwoOutputs": "twooutputs.data() returned labels keyed by ['cls', 'reg']: models with several outputs are not "
                  "supported; give a model with one output and one label per example (docs/own-model.md).",
    "TwoOutputsTF": "twooutputstf: the model has 2 outputs: models with several outputs are not supported; give a "
                    "model with one output and one label per example (docs/own-model.md).",
    # It read "checking its data and model failed: AttributeError: 'tuple' object has no attribute 'shape'".
    "SubTwoOut": "subtwoout: the model's call returns 2 outputs: models with several outputs are not supported; give "
                 "a model with one output and one label per example (docs/own-model.md).",
    "SubNamedOut": "subnamedout: the model's output is a dict keyed by ['cls']; give a model whose output is one "
                   "tensor (keras.Model(inputs, tensor), not keras.Model(inputs, {'name': tensor}); docs/own-model.md).",
    "SubOneTuple": "subonetuple: the model's call returns a tuple of one tensor; return the tensor itself (the loops "
                   "and metrics take one).",   # not "returns 1 outputs: ... several outputs"
    # It printed the TensorSpecs, without a word on sample weights.
    "WeightedTF": "weightedtf: the train examples are (features, label, sample_weight) triples: sample weights are "
                  "not taken (the loops weigh every example alike); expected (features, label) pairs.",
}


@pytest.mark.parametrize("workload, target, expected", [
    ("Batched", None, REFUSED["Batched"]),
    ("Base", "mae<=3", "Target metric 'mae' is not one base scores; valid: accuracy, loss."),
    ("TwoOutputsTF", None, REFUSED["TwoOutputsTF"]),
])
def test_bad_data_is_refused_once_for_the_run_before_any_timing(tmp_path, workload, target, expected):
    """A dataset already batched (the data's check), a target the model does not compute (the
    parent's, from the check's record); the other refusals are the same path
    (tests/workloads/test_protocol.py)."""
    project = tmp_path / "elsewhere" / "bad"
    (project / "results").mkdir(parents=True)
    (project / "results" / "kept.txt").write_text("an earlier run\n")
    (project / "bad.py").write_text(BAD)
    args = ["run", "--no-peak", "--workload", f"bad.py:{workload}", "--strategy", "default", "--strategy", "virtual",
            "--loop", "fit", "--loop", "custom"] + (["--target", target] if target else [])
    result = _distbench(project, *args)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"distbench: error: {expected}"], result.stderr[-2000:]
    assert "[1/" not in result.stdout                         # no cell ran
    assert sorted(p.name for p in (project / "results").iterdir()) == ["kept.txt"]


@pytest.mark.parametrize("workload", sorted(REFUSED))
def test_each_refusal_of_the_check_before_a_run_is_its_one_line(tmp_path, tiny, workload):
    """The check a run's worker makes (:func:`distbench.scenarios.preflight.check`), here in
    process: each refusal's line, which the run prints as its error."""
    from distbench import plugins
    from distbench.scenarios import preflight
    from distbench.session.suite import Suite
    from distbench.workloads import WORKLOADS

    (tmp_path / "bad.py").write_text(BAD)
    spec = tiny(workload.lower(), "default", "fit", global_batch=32, steps_per_epoch=None, data="auto",
                plugins=(f"workload={tmp_path / 'bad.py'}:{workload}",))
    try:
        plugins.ensure(spec)
        spec = Suite(hw=object()).prepare(spec)   # the data source as the run resolves it (``auto``)
        with pytest.raises(UserError) as refused:
            preflight.check(spec)
    finally:
        if workload.lower() in WORKLOADS:
            WORKLOADS.unregister(workload.lower())
    if REFUSED[workload].endswith(": "):   # TensorFlow's own words follow
        assert str(refused.value).startswith(REFUSED[workload]) and "\n" not in str(refused.value), refused.value
    else:
        assert str(refused.value) == REFUSED[workload]


def test_a_check_whose_process_dies_is_no_verdict_on_the_input(tmp_path):
    """A preflight killed by a signal said "bad input" (exit 2) and ran nothing; its cells,
    which do not need it, run and are measured."""
    project = tmp_path / "elsewhere" / "dies"
    project.mkdir(parents=True)
    (project / "bad.py").write_text(BAD)
    result = _distbench(project, "run", "--no-peak", "--workload", "bad.py:CheckDies", "--strategy", "default",
                        "--loop", "custom", "--guard-seeds", "0", "--steps-per-epoch", "10", "--eval-examples", "32",
                        "--global-batch", "8")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "[1/1] checkdies-default-custom" in result.stdout and "ok" in result.stdout


def test_a_model_that_turns_nan_fails_its_cells_in_every_loop(tmp_path):
    """NaN inputs pass every check of shapes and types; the loss they give is NaN. One NaN in
    one training example turns the weights NaN, though the loss Keras reports may stay
    finite. Each cell is an error naming it (they read "ok", with a test accuracy or a null
    test metric), and the run fails."""
    project = tmp_path / "elsewhere" / "nan"
    project.mkdir(parents=True)
    (project / "bad.py").write_text(BAD)
    result = _distbench(project, "run", "--no-peak", "--workload", "bad.py:Diverges", "--workload", "bad.py:OneNan",
                        "--workload", "bad.py:RaisesLate",
                        "--strategy", "default", "--guard-seeds", "0", "--steps-per-epoch", "10",
                        "--timing-cost-pairs", "0", "--eval-examples", "32", "--global-batch", "8")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    for loop in ("fit", "custom", "train_on_batch"):
        assert f"diverges-default-{loop}: error: Training diverged: the last epoch's mean loss is nan" in result.stdout
        assert (f"onenan-default-{loop}: error: Training diverged: 1 of the model's 4 weight arrays holds NaN or "
                "infinite values") in " ".join(result.stdout.split()), result.stdout[-3000:]
    assert "No cell was measured." in result.stdout
    where = re.search(r"raiseslate-default-custom: error: RuntimeError: the optimizer's settings are missing \(raised at "
                      r"bad\.py:(\d+), in optimizer\)", " ".join(result.stdout.split()))
    assert where and "raise RuntimeError" in BAD.splitlines()[int(where.group(1)) - 1], result.stdout[-3000:]


def test_a_subclassed_model_trains_in_every_loop_and_on_several_replicas(tmp_path):
    """A subclassed ``keras.Model`` declares no inputs, built or not: it was refused ("start
    it with keras.Input(shape=...) (or build it)", which building does not change). Its call
    on two examples now builds it and checks the data, in every worker."""
    project = tmp_path / "elsewhere" / "sub"
    project.mkdir(parents=True)
    (project / "bad.py").write_text(BAD)
    result = _distbench(project, "run", "--no-peak", "--workload", "bad.py:Subclassed", "--strategy", "default",
                        "--strategy", "virtual", "--loop", "fit", "--loop", "custom", "--loop", "train_on_batch",
                        "--guard-seeds", "0", "--steps-per-epoch", "10", "--timing-cost-pairs", "0",
                        "--eval-examples", "32", "--global-batch", "8")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    records = _records(project)
    for cell in (f"subclassed-{s}-{lp}" for s in ("default", "virtual") for lp in LOOPS):
        (record,) = records[cell]
        assert record["status"] == "ok" and record["compute"]["flops_per_step"] > 0, record.get("reason")
    assert records["subclassed-virtual-custom"][0]["batch"]["replicas"] == 2


def _pytest_in_project(tmp_path, name: str, matrix: str, *args):
    """``pytest --benchmark-only`` in a project of BAD's workloads with ``matrix`` as its
    ``[tool.distbench]``: the result and its whole output."""
    project = tmp_path / "elsewhere" / name
    project.mkdir(parents=True)
    (project / "bad.py").write_text(BAD)
    (project / "pyproject.toml").write_text("[tool.distbench]\n" + matrix)
    result = subprocess.run([sys.executable, "-m", "pytest", "--benchmark-only", "-q", "-p", "no:cacheprovider",
                             "--distbench-no-peak", *args], cwd=project, capture_output=True, text=True, timeout=600,
                            env=_env())
    return result, result.stdout + result.stderr, project


def test_pytest_fails_a_diverging_cell_without_pytest_benchmark_s_unused_fixture_warning(tmp_path):
    """And a cell whose code of the user's raised shows where: the reason alone named no file,
    the traceback was only in the stored run."""
    result, out, _ = _pytest_in_project(tmp_path, "nan", 'workloads = ["bad.py:Diverges", "bad.py:RaisesLate"]\n'
                                        'strategies = ["default"]\nloops = ["custom"]\nguard_seeds = 0\n'
                                        'steps_per_epoch = 10\neval_examples = 32\nglobal_batch = 8\n')
    assert result.returncode == 1 and "2 failed" in out, out[-3000:]
    assert "Training diverged: the last epoch's mean loss is nan" in out and "was not used" not in out, out[-3000:]
    assert re.search(r'File ".*bad\.py", line \d+, in optimizer\n +raise RuntimeError', out), out[-3000:]


def test_a_workload_of_its_own_reads_the_data_folder_it_is_given_from_a_sub_folder(tmp_path):
    """``--data ../data`` of CSV files: refused as a text folder without class sub-folders;
    now the workload's data() reads it, in its worker, as the path meant where typed."""
    project = tmp_path / "elsewhere" / "tables"
    (project / "data").mkdir(parents=True)
    (project / "sub").mkdir()
    (project / "bad.py").write_text(BAD)
    rng = np.random.default_rng(0)
    np.savetxt(project / "data" / "x.csv", rng.standard_normal((64, 8)), delimiter=",")
    np.savetxt(project / "data" / "y.csv", rng.integers(0, 3, 64), delimiter=",", fmt="%d")
    result = _distbench(project / "sub", "run", "--no-peak", "--workload", "../bad.py:FromFolder", "--data", "../data",
                        "--strategy", "default", "--loop", "custom", "--guard-seeds", "0", "--steps-per-epoch", "10",
                        "--eval-examples", "32", "--global-batch", "8", "--results", str(project / "results"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    (record,) = _records(project)["fromfolder-default-custom"]
    assert record["status"] == "ok" and record["config"]["data"] == str(project / "data")


def test_a_relative_path_that_is_not_there_names_the_folder_it_was_read_from(tmp_path):
    """Typed from a sub-folder, a model reading ``data/x.csv`` said only "data/x.csv not
    found": the worker starts where the command was typed, and the message now says where."""
    project = tmp_path / "elsewhere" / "tables"
    (project / "data").mkdir(parents=True)
    (project / "sub").mkdir()
    (project / "bad.py").write_text(BAD)
    np.savetxt(project / "data" / "x.csv", np.zeros((64, 8)), delimiter=",")
    result = _distbench(project / "sub", "run", "--no-peak", "--workload", "../bad.py:FromRelativePath", "--strategy",
                        "default", "--loop", "custom", "--guard-seeds", "0", "--results", str(project / "results"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "FileNotFoundError: data/x.csv not found" in result.stderr, result.stderr
    assert result.stderr.rstrip().endswith(f"(its worker ran in {project / 'sub'}, where relative paths are read from)")


def test_pytest_k_checks_only_the_selected_cells_workloads(tmp_path):
    """A matrix of a good and a broken workload: ``-k base`` measures base (the broken one,
    outside the slice, stopped the run with exit 4)."""
    result, out, _ = _pytest_in_project(tmp_path, "slice", 'workloads = ["bad.py:Base", "bad.py:Batched"]\n'
                                        'strategies = ["default"]\nloops = ["custom"]\nguard_seeds = 0\n'
                                        'steps_per_epoch = 10\neval_examples = 32\n', "-k", "base")
    assert result.returncode == 0 and "1 passed" in out and "already batched" not in out, out[-3000:]


def test_pytest_refuses_bad_data_once_not_once_per_cell(tmp_path):
    result, out, project = _pytest_in_project(tmp_path, "bad", 'workloads = ["bad.py:Batched"]\n'
                                              'strategies = ["default", "virtual"]\nloops = ["fit", "custom"]\n')
    assert result.returncode == 4, out[-3000:]
    assert out.count("already batched") == 1, out[-3000:]
    assert not (project / "results").exists()


def test_check_against_finds_a_commit_that_stops_the_model_learning(tmp_path):
    """The image example as a git project; a commit gives it a learning rate of 0: the same
    speed, a test accuracy at chance. check --against read it PASS (step times only)."""
    project = _example(tmp_path, "image_model")
    env = _env(GIT_AUTHOR_NAME="u", GIT_AUTHOR_EMAIL="u@example.com", GIT_COMMITTER_NAME="u",
               GIT_COMMITTER_EMAIL="u@example.com")

    def git(*args):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, env=env)

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "Digits")
    with open(project / "model.py", "a") as f:
        f.write("\n\nDigits.optimizer = lambda self: distbench.keras_api().optimizers.SGD(learning_rate=0.0)\n")
    git("commit", "-q", "-am", "Learning rate")
    result = _distbench(project, "check", "--against", "HEAD~1", "--strategy", "default", "--loop", "custom",
                        "--epochs", "1", "--threshold", "0.2", "--max-pairs", "6", "--format", "json")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    document = json.loads(result.stdout)
    assert document["result"] == "less accurate", document["lines"]
    (cell,) = document["cells"]
    assert cell["cell"] == "digits-default-custom" and float(cell["test A"]) - float(cell["test B"]) > 0.3, cell
    assert "LESS ACCURATE: digits-default-custom: test accuracy A " in result.stderr
    # The run's report says so too: its interleaved table holds both sides' test metric and
    # the verdict; it showed the speed's `same` alone.
    assert _distbench(project, "report", "--out", "rep").returncode == 0
    page, markdown = (project / "rep" / "report.html").read_text(), (project / "rep" / "report.md").read_text()
    for text in (page, markdown):
        assert ", LESS ACCURATE" in text and "an interleaved run has no reference seeds" in text
    assert re.search(r'<tr class="bad">\s*<td>digits-default-custom</td>', page), page[page.index("Interleaved"):][:1500]


LOSSES = '''import numpy as np

import distbench
from distbench import Workload

BATCH, STEPS = 32, 12


def _split(x, y):
    n = BATCH * STEPS   # the train split is exactly the steps' examples: every loop sees each once
    return (x[:n], y[:n]), (x[n:], y[n:])


class Mask(Workload):
    """A 1-unit sigmoid per pixel (8x8): 64 loss values per example. No update (SGD, rate 0)."""
    name = "mask"

    def build_model(self):
        keras = distbench.keras_api()
        return keras.Sequential([keras.Input(shape=(8, 8, 1)), keras.layers.Conv2D(4, 3, padding="same"),
                                 keras.layers.Conv2D(1, 1, activation="sigmoid")])

    def data(self, source, seed):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(640, 8, 8, 1)).astype(np.float32)
        return _split(x, (x > 0.3).astype(np.float32))

    def loss(self):
        return distbench.keras_api().losses.BinaryCrossentropy()

    def metrics(self):
        return [distbench.keras_api().metrics.BinaryAccuracy(name="pixel_acc")]

    def optimizer(self):
        return distbench.keras_api().optimizers.SGD(learning_rate=0.0)


class Summed(Workload):
    """A regression of labels (N,) on a Dense(1) output whose loss sums (reduction="sum")."""
    name = "summed"
    keras_flavours = ("keras3", "tf_keras")

    def build_model(self):
        keras = distbench.keras_api()
        return keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(1)])

    def data(self, source, seed):
        rng = np.random.default_rng(1)
        x = rng.normal(size=(640, 5)).astype(np.float32)
        return _split(x, (x @ np.arange(1, 6) + 3).astype(np.float32))

    def loss(self):
        return distbench.keras_api().losses.MeanSquaredError(reduction="sum")

    def metrics(self):
        return [distbench.keras_api().metrics.MeanAbsoluteError(name="mae")]

    def optimizer(self):
        return distbench.keras_api().optimizers.SGD(learning_rate=0.0)


class Named(Summed):
    """A sigmoid unit, labels (N,), the loss by its name; it trains."""
    name = "named"

    def build_model(self):
        keras = distbench.keras_api()
        return keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(1, activation="sigmoid")])

    def data(self, source, seed):
        (x, y), (xt, yt) = Summed.data(self, source, seed)
        return (x, (y > 3).astype(np.float32)), (xt, (yt > 3).astype(np.float32))

    def loss(self):
        return "binary_crossentropy"

    def metrics(self):
        return [distbench.keras_api().metrics.BinaryAccuracy(name="accuracy")]

    def optimizer(self):
        return distbench.keras_api().optimizers.SGD(learning_rate=0.1)


class Broadcast(Summed):
    """A Loss subclass of the user's own, whose call takes labels (N,) and a Dense(1) output
    as Keras hands them: Keras 3 raw (they broadcast to N x N, which fit trains on), tf-keras
    with an axis added to the labels. The custom loop had added it under both, and trained
    another model than Keras 3's fit (test MAE 52.9 against 59.0, in a user's trial)."""
    name = "broadcast"

    def loss(self):
        import tensorflow as tf
        keras = distbench.keras_api()

        class LogCosh(keras.losses.Loss):
            def call(self, y_true, y_pred):
                return tf.reduce_mean(tf.math.log(tf.cosh(y_pred - tf.cast(y_true, y_pred.dtype))), axis=-1)

        return LogCosh()

    def optimizer(self):
        return distbench.keras_api().optimizers.SGD(learning_rate=0.05)


class Half(Summed):
    """A mixed_float16 layer under a frozen float32 output, a loss of 1e-9 x the squared error:
    its gradient into the float16 layer underflows to 0 unless the loss is scaled, as compile's
    LossScaleOptimizer scales it. SGD at 1e6 makes that gradient a step of the usual size."""
    name = "half"

    def build_model(self):
        keras = distbench.keras_api()
        keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            return keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(8),
                                     keras.layers.Dense(1, dtype="float32", trainable=False, kernel_initializer="ones")])
        finally:
            keras.mixed_precision.set_global_policy("float32")

    def loss(self):
        import tensorflow as tf
        return lambda y, p: 1e-9 * tf.square(tf.reshape(tf.cast(y, p.dtype), [-1]) - tf.reshape(p, [-1]))

    def optimizer(self):
        return distbench.keras_api().optimizers.SGD(learning_rate=1e6)
'''


def test_losses_of_many_values_per_example_of_a_sum_or_by_name_train_as_fit_trains_them(tmp_path):
    """A user's trial: a per-pixel loss trained the custom loop at 64 times fit's loss, and
    stored a test loss 64 times Keras's in every loop; a loss of reduction="sum" was averaged
    by the custom loop; a loss by name failed every cell at its FLOPs count, after training;
    under tf_keras a Dense(1) regression was refused before any timing. With no update
    (rate 0) every loop's training loss is the untrained model's, over the same examples.
    A mixed_float16 model: the custom loop stepped it without compile's loss scaling, and its
    float16 layer learned nothing (test MAE 5.257 against fit's 4.278, both flavours)."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "losses.py").write_text(LOSSES)
    common = ("--strategy", "default", "--guard-seeds", "0", "--no-peak", "--epochs", "1", "--steps-per-epoch", "12",
              "--global-batch", "32", "--timing-cost-pairs", "0")
    chosen = [arg for w in ("Mask", "Summed", "Named", "Half", "Broadcast") for arg in ("--workload", f"losses.py:{w}")]
    result = _distbench(project, "run", *common, "--keras", "keras3", "--keras", "tf_keras", *chosen, "--loop", "fit",
                        "--loop", "custom")   # tf_keras: Summed's and Named's cells (Mask declares Keras 3 only)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    records = _records(project)
    ok = {cell: rs[0] for cell, rs in records.items() if rs[0]["status"] == "ok"}
    assert {c.split("-")[0] for c in ok if c.endswith("tf_keras")} == {"summed", "named", "half", "broadcast"}
    assert len(ok) == 5 * 2 + 4 * 2, {c: rs[0].get("reason") for c, rs in records.items()}
    for name in ("mask", "summed"):
        fit = ok[f"{name}-default-fit"]["accuracy"]["train_loss"]
        for cell in [c for c in ok if c.startswith(f"{name}-default-")]:
            assert ok[cell]["accuracy"]["train_loss"] == pytest.approx(fit, rel=1e-3), (cell, fit)
    for name, flavour, metric in itertools.product(("half", "broadcast"), ("", "-tf_keras"), ("mae", "loss")):
        fit, custom = (ok[f"{name}-default-{loop}{flavour}"]["accuracy"]["test"][metric] for loop in ("fit", "custom"))
        assert custom == pytest.approx(fit, rel=1e-3), (name, flavour, metric, fit, custom)   # it learns as fit does
    mask = ok["mask-default-fit"]["accuracy"]
    assert 0.3 < mask["train_loss"] < 3 and mask["test"]["loss"] == pytest.approx(mask["train_loss"], rel=0.2), mask
    assert all(ok[f"named-default-{cell}"]["compute"]["flops_per_step"] > 0
               for cell in ("fit", "custom", "fit-tf_keras", "custom-tf_keras"))


def test_a_mixed_precision_model_under_parameter_server_with_tf_keras_is_a_skip_with_its_reason(tmp_path):
    """tf-keras refuses a mixed_float16 layer under ParameterServerStrategy (its loss scaling
    does not support it): every such cell was an error, "ValueError: Mixed precision is not
    supported...", as if it had crashed, where Keras 3's limits under that strategy are skips."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "losses.py").write_text(LOSSES)
    result = _distbench(project, "run", "--workload", "losses.py:Half", "--strategy", "parameter_server", "--keras",
                        "tf_keras", "--loop", "custom", "--guard-seeds", "0", "--no-peak", "--epochs", "1")
    (stored,) = (project / "results").glob("*/*.json")
    (record,) = json.loads(stored.read_text())["distbench"]["unmeasured"]["half-parameter_server-custom-tf_keras"]
    assert record["status"] == "skipped", record.get("reason")
    assert "tf-keras's loss scaling does not support ParameterServerStrategyV2" in record["reason"]
    assert "--keras keras3" in record["reason"] and result.returncode == 3   # nothing measured: never a pass


OTHER_KERAS = '''import numpy as np

import distbench
from distbench import Workload


class Ops(Workload):
    """Lists both Keras, but uses Keras 3's keras.ops."""
    name = "ops"
    keras_flavours = ("keras3", "tf_keras")

    def build_model(self):
        keras = distbench.keras_api()
        return keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(8, activation=keras.ops.relu),
                                 keras.layers.Dense(2, activation="softmax")])

    def data(self, source, seed):
        x = np.random.default_rng(seed).normal(size=(256, 4)).astype(np.float32)
        return (x[:192], (x[:192, 0] > 0).astype(np.int32)), (x[192:], (x[192:, 0] > 0).astype(np.int32))

    def loss(self):
        return distbench.keras_api().losses.SparseCategoricalCrossentropy()


class Direct(Ops):
    """Lists both Keras, but builds its model from `import keras`, Keras 3."""
    name = "direct"

    def build_model(self):
        import keras

        return keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2, activation="softmax")])
'''


@pytest.mark.parametrize("workload, said", [
    ("Ops", "ops under tf_keras (its keras_flavours lists it): checking its data and model failed: AttributeError: "),
    ("Direct", "direct: build_model() returned a Keras 3 model (Sequential) in a tf_keras cell; build it from "
               "distbench.keras_api(), this process's Keras, or list only the Keras it is written for in "
               "keras_flavours."),
])
def test_a_model_of_keras_3_alone_that_lists_tf_keras_too_is_named_before_any_timing(tmp_path, workload, said):
    """A model from `import keras` in a tf_keras cell passed the check and failed each cell in
    TensorFlow ("'Variable' object has no attribute '_unique_id'"); Keras 3's keras.ops was
    refused without naming the flavour that lacks it (a user's trial)."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "models.py").write_text(OTHER_KERAS)
    result = _distbench(project, "run", "--workload", f"models.py:{workload}", "--strategy", "multi_worker",
                        "--loop", "custom", "--guard-seeds", "0", "--no-peak", "--steps-per-epoch", "5")
    assert result.returncode == 2 and result.stderr.startswith(f"distbench: error: {said}"), result.stderr[-2000:]
    assert len(result.stderr.strip().splitlines()) == 1 and not (project / "results").exists()
