"""The custom loop scales a LossScaleOptimizer's loss as fit does (mixed precision): an SGD
step was 32,768 times too small (the default scale), so its cells learned nothing."""

import os
import subprocess
import sys

import pytest

STEP = """
import tensorflow as tf
from distbench.core import keras_flavour
from distbench.loops.custom import scaled_loss, unscaled_gradients

keras = keras_flavour.api()
inner = keras.optimizers.SGD(learning_rate=1.0)
optimizer = (keras.optimizers.LossScaleOptimizer(inner) if hasattr(keras.optimizers, "LossScaleOptimizer")
             else keras.mixed_precision.LossScaleOptimizer(inner))
w = tf.Variable(5.0)
with tf.GradientTape() as tape:
    loss = 3.0 * w                       # d loss / d w = 3: one SGD step of rate 1 takes w to 2
    scaled = scaled_loss(optimizer, loss)
grads = unscaled_gradients(optimizer, tape.gradient(scaled, [w]))
optimizer.apply_gradients(zip(grads, [w]))
print("w", float(w.numpy()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("flavour", ["keras3", "tf_keras"])
def test_a_loss_scale_optimizer_s_step_is_the_plain_optimizer_s(flavour):
    env = {**{k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if flavour == "tf_keras":
        env["TF_USE_LEGACY_KERAS"] = "1"
    result = subprocess.run([sys.executable, "-c", STEP], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["w", "2.0"], result.stdout


REGULARISED = """
import numpy as np

import distbench
from distbench import Workload


class Regularised(Workload):
    name = "regularised"

    def build_model(self):
        keras = distbench.keras_api()
        return keras.Sequential([
            keras.Input(shape=(16,)),
            keras.layers.Dense(32, activation="relu", kernel_regularizer=keras.regularizers.L2(1.0)),
            keras.layers.ActivityRegularization(l1=0.1),
            keras.layers.Dense(4, activation="softmax"),
        ])

    def data(self, source, seed):
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(512, 16)).astype(np.float32), rng.integers(0, 4, 512).astype(np.int32)
        return (x[:384], y[:384]), (x[384:], y[384:])

    def loss(self):
        return distbench.keras_api().losses.SparseCategoricalCrossentropy()

    def optimizer(self):   # no update: every loop's training loss is the untrained model's
        return distbench.keras_api().optimizers.SGD(learning_rate=0.0)
"""


@pytest.mark.parametrize("strategy", ["default", "virtual"])
def test_the_custom_loop_adds_the_model_s_own_losses_as_fit_does(tiny, tmp_path, strategy):
    """Regularisers and add_loss (``model.losses``): fit adds them to the loss, once over
    the replicas; the custom loop left them out and trained another objective (a user's
    L2 model: training loss 19.93 under fit, 1.62 under custom), so a commit that broke such
    a model's accuracy passed its custom cell. With no update, the loops' losses are equal."""
    from distbench import plugins
    from distbench.scenarios.tasks import run_cell
    from distbench.workloads import WORKLOADS

    (tmp_path / "reg.py").write_text(REGULARISED)
    (name,), refs = plugins.resolve([f"{tmp_path / 'reg.py'}:Regularised"], "workload")
    losses = {}
    try:
        for loop in ("fit", "custom"):
            record = run_cell(tiny(name, strategy, loop, plugins=tuple(refs), data="auto", steps_per_epoch=6,
                                   global_batch=64, init_seed=0))
            assert record["status"] == "ok", record.get("reason")
            losses[loop] = record["accuracy"]["train_loss"]
    finally:
        WORKLOADS.unregister(name)   # the registry is this process's
    assert losses["fit"] > 5   # mostly the regularisers': cross-entropy alone is about ln 4 = 1.4
    assert losses["custom"] == pytest.approx(losses["fit"], rel=1e-3), losses
