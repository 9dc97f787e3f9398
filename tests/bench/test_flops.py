"""FLOPs of a training step, counted from its trace, against counts by hand."""

import pytest
from distbench.trackers import flops


@pytest.fixture(autouse=True)
def no_cache(monkeypatch):
    monkeypatch.setenv("DISTBENCH_CACHE", "off")   # count, never read an earlier count


def _spec(shape, dtype="float32"):
    import tensorflow as tf

    return tf.TensorSpec(shape, dtype)


def _dense_ops(count: dict) -> int:
    return sum(v for op, v in count["by_op"].items() if op in flops.DENSE_OPS)


def test_a_small_conv1d_and_dense_model_matches_the_hand_count():
    import keras

    batch = 32
    model = keras.Sequential([keras.Input((20, 4)), keras.layers.Conv1D(8, 3), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    count = flops.train_step_flops(model, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                                   keras.optimizers.SGD(), _spec((batch, 20, 4)), _spec((batch,), "int32"))
    # By hand, 2 FLOPs per multiply-add. Conv1D: 18 output positions x 8 filters x (3 taps x 4
    # channels); Dense: 144 inputs x 3 outputs.
    conv = 2 * batch * 18 * 8 * 3 * 4
    dense = 2 * batch * (18 * 8) * 3
    # The step: the forward pass, the weight gradient of each layer, and the Dense layer's
    # input gradient (which the convolution's weight gradient needs). Nothing needs the
    # gradient of the input batch: TensorFlow prunes it, and it is not counted.
    assert count["by_op"]["Conv2D"] == conv
    assert count["by_op"]["Conv2DBackpropFilter"] == conv
    assert "Conv2DBackpropInput" not in count["by_op"]
    assert count["by_op"]["MatMul"] == 3 * dense
    assert _dense_ops(count) == 2 * conv + 3 * dense
    assert count["forward"] >= conv + dense and count["per_step"] >= 2 * conv + 3 * dense
    # Bias adds and the loss are the rest: a few percent, no more.
    assert count["per_step"] < 1.05 * (2 * conv + 3 * dense)


def test_reuters_cnn_step_matches_the_hand_count():
    from distbench import workloads

    w = workloads.get("reuters_cnn")
    batch = 32
    count = flops.train_step_flops(w.build_model(w.vocab_size), w.loss(), w.optimizer(),
                                   _spec((batch, 300), "int32"), _spec((batch,), "int32"))
    # Per example: Conv1D 64/5 over 7 channels at 296 positions, Conv1D 32/3 over 64 channels
    # at 146 positions (after a pool to 148), Dense 46 over 73 x 32 = 2336 inputs.
    forward = 2 * (296 * 64 * 5 * 7 + 146 * 32 * 3 * 64 + 2336 * 46) * batch
    assert forward == 106_721_280
    # Training: forward, the weight gradient and the input gradient of each of the three
    # layers (the first convolution's input gradient feeds the embedding's gradient).
    assert _dense_ops(count) == 3 * forward
    assert count["forward"] == pytest.approx(forward, rel=0.02)   # plus bias adds, pooling, softmax


def test_the_count_is_cached_by_architecture_not_by_layer_names(monkeypatch, tmp_path):
    import keras

    monkeypatch.setenv("DISTBENCH_CACHE", str(tmp_path))

    def model(units):
        return keras.Sequential([keras.Input((8,)), keras.layers.Dense(units)])

    args = (keras.losses.MeanSquaredError(), keras.optimizers.SGD(), _spec((4, 8)), _spec((4, 2)))
    first = flops.train_step_flops(model(2), *args[:2], *args[2:])
    assert len(list(tmp_path.iterdir())) == 1
    again = flops.train_step_flops(model(2), keras.losses.MeanSquaredError(), keras.optimizers.SGD(), *args[2:])
    assert again == first and len(list(tmp_path.iterdir())) == 1      # same architecture, other layer names
    wider = flops.train_step_flops(model(4), keras.losses.MeanSquaredError(), keras.optimizers.SGD(),
                                   _spec((4, 8)), _spec((4, 4)))
    assert wider["by_op"]["MatMul"] == 2 * first["by_op"]["MatMul"] and len(list(tmp_path.iterdir())) == 2


def test_a_layer_s_configuration_and_the_model_s_code_are_part_of_the_key(monkeypatch, tmp_path):
    """A Conv1D of stride 2 has its stride-1 twin's weights and half its FLOPs: it read the
    twin's cached count. Code that built the model differently (a hash given) counts apart."""
    import keras

    monkeypatch.setenv("DISTBENCH_CACHE", str(tmp_path))

    def count(stride, code=None):
        model = keras.Sequential([keras.Input((40, 4)), keras.layers.Conv1D(8, 3, strides=stride),
                                  keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3)])
        return flops.train_step_flops(model, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                                      keras.optimizers.SGD(), _spec((16, 40, 4)), _spec((16,), "int32"), code)

    one, two = count(1), count(2)
    assert one["by_op"]["Conv2D"] == 2 * 16 * 38 * 8 * 3 * 4 and two["by_op"]["Conv2D"] == 2 * 16 * 19 * 8 * 3 * 4
    assert len(list(tmp_path.iterdir())) == 2
    count(1, code="other")
    assert len(list(tmp_path.iterdir())) == 3


def test_a_model_s_own_train_step_is_what_is_counted(monkeypatch, tmp_path):
    """fit and train_on_batch run a model's own train_step: one that steps twice counts twice
    the dense layers' work, one that calls Keras's once counts the standard step's. With the
    cache on: the two steps' source is the same, what they do is not (a cached count keyed
    by the source had read the same FLOPs for both sides of a user's check)."""
    import keras

    monkeypatch.setenv("DISTBENCH_CACHE", str(tmp_path))

    batch = 16

    def model(repeat: int):
        class Stepped(keras.Sequential):
            def train_step(self, data):
                for _ in range(repeat - 1):
                    super().train_step(data)
                return super().train_step(data)

        built = Stepped([keras.Input((12,)), keras.layers.Dense(8), keras.layers.Dense(3)])
        built.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return built

    x, y = _spec((batch, 12)), _spec((batch,), "int32")
    once, twice = (flops.own_step_flops(model(k), x, y) for k in (1, 2))
    standard = flops.train_step_flops(model(1), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                                      keras.optimizers.SGD(), x, y)
    hand = 2 * batch * (12 * 8 + 8 * 3)   # the forward pass's matmuls, 2 FLOPs per multiply-add
    assert once["forward"] == standard["forward"] and once["by_op"]["MatMul"] == standard["by_op"]["MatMul"]
    assert _dense_ops(once) == _dense_ops(standard) == 3 * hand - 2 * batch * 12 * 8   # no input gradient of x
    assert _dense_ops(twice) == 2 * _dense_ops(once)
    assert once["source"].endswith("model.<locals>.Stepped)")
