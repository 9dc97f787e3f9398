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
