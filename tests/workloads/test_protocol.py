"""The general workload protocol: any data form normalised, synthetic data of a model's own
shapes, per-example losses for the custom loop, and data that does not fit refused in one line."""

import os
import textwrap

import numpy as np
import pytest
from distbench import Workload
from distbench.core.errors import UserError
from distbench.workloads import inputs


def _keras():
    import keras

    return keras


class TwoInputs(Workload):
    """Token ids into an Embedding of 50 rows, and 3 floats; 4 classes."""

    name = "two_inputs"

    def build_model(self):
        keras = _keras()
        tokens = keras.Input(shape=(6,), dtype="int32", name="tokens")
        numbers = keras.Input(shape=(3,), name="numbers")
        x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(50, 4)(tokens))
        x = keras.layers.Concatenate()([x, numbers])
        return keras.Model({"tokens": tokens, "numbers": numbers}, keras.layers.Dense(4, activation="softmax")(x))

    def loss(self):
        return _keras().losses.SparseCategoricalCrossentropy()

    def metrics(self):
        return [_keras().metrics.SparseCategoricalAccuracy(name="accuracy")]


class Regression(Workload):
    name = "regression"

    def build_model(self):
        keras = _keras()
        return keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(1)])

    def loss(self):
        return _keras().losses.MeanSquaredError()

    def metrics(self):
        return [_keras().metrics.MeanAbsoluteError(name="mae")]


def test_synthetic_data_takes_the_model_s_inputs_and_the_loss_s_labels():
    workload = TwoInputs()
    data = workload.load("synthetic", seed=3)
    assert set(data.x_train) == {"tokens", "numbers"} and data.x_train["tokens"].shape == (2048, 6)
    assert data.x_train["tokens"].dtype == np.int32 and data.x_train["tokens"].max() < 50   # the Embedding's rows
    assert data.x_test["numbers"].shape == (512, 3) and data.y_train.dtype == np.int32
    assert set(np.unique(data.y_train)) <= {0, 1, 2, 3} and len(np.unique(data.y_train)) > 1
    found = workload.check(workload.build_model(), data)
    assert found["guard_metric"] == "accuracy" and found["test_metrics"] == ["accuracy", "loss"]
    assert found["directions"] == {"accuracy": "higher", "loss": "lower"}
    assert found["data"]["inputs"] == {"numbers": "float32 (3,)", "tokens": "int32 (6,)"}
    again = workload.load("synthetic", seed=3)
    assert np.array_equal(again.y_train, data.y_train)   # deterministic by seed

    regression = Regression()
    values = regression.load("synthetic", seed=0)
    assert values.y_train.shape == (2048, 1) and values.y_train.dtype == np.float32
    assert regression.check(regression.build_model(), values)["directions"]["mae"] == "lower"


def test_the_custom_loop_gets_one_loss_per_example_from_any_loss():
    import tensorflow as tf

    y, pred = tf.constant([[1.0], [3.0]]), tf.constant([[0.0], [0.0]])
    per_example = Regression().training_loss(per_example=True)
    assert np.allclose(np.asarray(per_example(y, pred)), [1.0, 9.0])
    assert float(Regression().training_loss()(y, pred)) == pytest.approx(5.0)   # the user's own, unchanged

    class Named(Regression):
        def loss(self):
            return "mae"

    assert np.allclose(np.asarray(Named().training_loss(per_example=True)(y, pred)), [1.0, 3.0])
    x, labels = _arrays()
    named = Named()   # a loss given by name is callable wherever the harness calls it (the check, FLOPs)
    assert named.check(named.build_model(), inputs.normalize(((x, labels), (x, labels)), "n", "auto"))["guard_metric"]


class Binary(Workload):
    """A sigmoid output of one unit, labels of shape (N,), the loss by name: Keras's fit trains it."""

    name = "binary"

    def build_model(self):
        keras = _keras()
        return keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(1, activation="sigmoid")])

    def loss(self):
        return "binary_crossentropy"

    def metrics(self):
        return [_keras().metrics.BinaryAccuracy(name="accuracy")]


@pytest.mark.parametrize("given", ["binary_crossentropy", "function"])
def test_a_loss_function_or_name_gets_labels_of_the_output_s_rank_as_compile_gives_them(given):
    """Called bare, ``binary_crossentropy`` refused labels (N,) beside an output (N, 1) (rank
    differs), so the check refused a model Keras's fit trains, before any timing."""
    import tensorflow as tf

    class Given(Binary):
        def loss(self):
            return given if given != "function" else _keras().losses.binary_crossentropy

    x = np.random.default_rng(0).standard_normal((20, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)                                  # (20,)
    workload = Given()
    model = workload.build_model()
    assert workload.check(model, inputs.normalize(((x, y), (x, y)), "binary", "auto"))["guard_metric"] == "accuracy"
    pred = model(x)
    per_example = np.asarray(workload.training_loss(per_example=True)(tf.constant(y), pred))
    expected = _keras().losses.BinaryCrossentropy(reduction=None)(y[:, None], pred)
    assert per_example.shape == (20,) and np.allclose(per_example, np.asarray(expected), atol=1e-6)


def _arrays(n=20, width=5):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, width)).astype(np.float32), rng.standard_normal((n, 1)).astype(np.float32)


def test_data_that_does_not_fit_is_refused_in_one_line():
    regression = Regression()
    model = regression.build_model()
    x, y = _arrays(width=7)
    with pytest.raises(UserError, match=r"regression: the train examples have shape \(7,\); the model "
                                        r"expects \(5,\) per example"):
        regression.check(model, inputs.normalize(((x, y), (x, y)), "regression", "auto"))
    x, y = _arrays()

    def batched():
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices((x, y)).batch(4)

    with pytest.raises(UserError, match=r"examples have shape \(None, 5\): already batched; give unbatched "
                                        r"examples of shape \(5,\)"):
        regression.check(model, inputs.normalize((batched, batched), "regression", "auto"))
    with pytest.raises(UserError, match=r"features are named \['numbers'\]; the model's inputs are "
                                        r"\['numbers', 'tokens'\]"):
        TwoInputs().check(TwoInputs().build_model(), inputs.normalize((({"numbers": x[:, :3]}, y),) * 2, "t", "auto"))

    class NoAuc(Regression):
        guard_metric = "auc"

    with pytest.raises(UserError, match="guard_metric 'auc' is not one the model computes; it computes mae, loss"):
        NoAuc().check(model, inputs.normalize(((x, y), (x, y)), "regression", "auto"))
    with pytest.raises(UserError, match=r"expected \(\(x_train, y_train\), \(x_test, y_test\)\)"):
        inputs.normalize([x, y, x], "regression", "auto")
    with pytest.raises(UserError, match=r"returned a split of 3 parts, as \(x, y, sample_weight\): sample weights "
                                        r"are not taken"):   # it had read "a tuple of 2 (tuple, tuple)"
        inputs.normalize(((x, y, np.ones(len(y))), (x, y)), "regression", "auto")
    with pytest.raises(UserError, match="the train features have 20 rows but the labels 19"):
        inputs.normalize(((x, y[:19]), (x, y)), "regression", "auto")


def test_labels_that_do_not_fit_the_output_are_refused():
    workload = TwoInputs()
    made = workload.load("synthetic", seed=0)
    labels = np.zeros((len(made.y_train), 3, 2), dtype=np.float32)
    data = inputs.normalize(((made.x_train, labels), (made.x_test, made.y_test)), "two_inputs", "auto")
    with pytest.raises(UserError, match=r"two_inputs: labels of shape \(3, 2\) \(float32\) do not fit the model's "
                                        r"output \(4,\) under SparseCategoricalCrossentropy"):
        workload.check(workload.build_model(), data)


def test_labels_given_as_text_and_values_beyond_the_classes_say_what_to_give():
    """Digits as text ('6') passed the check (NumPy casts them for the loss) and failed every
    cell mid-training in tf.data; a regression's values beside an output of 4 units read as
    class ids only."""
    workload = TwoInputs()
    model = workload.build_model()
    data = workload.load("synthetic", seed=0)
    data.y_train = data.y_train.astype(str)
    with pytest.raises(UserError, match=r"two_inputs: the train labels are text \(such as '\d'\), which tf.data "
                                        r"cannot cast to numbers mid-run; give numbers, e.g. y.astype\(int\)"):
        workload.check(model, data)
    data = workload.load("synthetic", seed=0)
    data.y_train = (data.y_train + 25).astype(np.float32)
    with pytest.raises(UserError, match=r"class id must be 0 to 3\.$"):   # a cross-entropy's: class ids indeed
        workload.check(model, data)

    class Regressing(TwoInputs):
        def loss(self):
            return "mse"

    with pytest.raises(UserError, match=r"class id must be 0 to 3 \(values to regress, one per example, want an "
                                        r"output of one unit, not 4\)\.$"):
        Regressing().check(model, data)


def test_class_ids_that_are_not_whole_numbers_and_an_empty_test_split_are_refused():
    """Float labels 0.5 ... for a 4-class output train nothing without an error (the loss takes
    them), as a NaN label makes every loss NaN; a test split of no examples judged nothing
    (``test 0.000``)."""
    workload = TwoInputs()
    model = workload.build_model()
    data = workload.load("synthetic", seed=0)
    data.y_train = data.y_train.astype(np.float32)
    workload.check(model, data)                       # whole numbers held as floats are class ids
    data.y_train[3] = 0.5
    with pytest.raises(UserError, match=r"two_inputs: 1 of the train labels is not a whole number \(such as 0.5\); the "
                                        r"model's output has 4 classes, so a label is a class id, 0 to 3\."):
        workload.check(model, data)
    data.y_train[3] = np.nan
    with pytest.raises(UserError, match=r"two_inputs: 1 of the 2,048 train examples' labels holds NaN or infinite "
                                        r"values \(row 3 the first\)"):
        workload.check(model, data)
    data = workload.load("synthetic", seed=0)
    empty = inputs.Data(data.x_train, data.y_train, {k: v[:0] for k, v in data.x_test.items()}, data.y_test[:0])
    with pytest.raises(UserError, match="two_inputs: the test split has no examples; a cell trains on the train split "
                                        "and is judged on the test split, so each needs at least one."):
        workload.check(model, empty)


def test_a_workload_s_own_synthetic_data_is_used_and_named_synthetic():
    class Own(Regression):
        def synthetic(self, seed):
            x, y = _arrays(n=10)
            return (x, y), (x[:4], y[:4])

    data = Own().load("synthetic", seed=0)
    assert data.source == "synthetic" and data.examples("train") == 10 and data.examples("test") == 4


@pytest.mark.parametrize("loop", ["fit", "train_on_batch", "custom"])
def test_a_regression_workload_trains_in_every_loop_in_process(tiny, loop):
    """Its training metric is its MAE, its guard's direction lower; train_on_batch keeps the
    workload's rate (the text recipe's halving at epoch 5 is the text workloads')."""
    from distbench.scenarios.tasks import run_cell
    from distbench.workloads.registry import WORKLOADS

    WORKLOADS.add(Regression, where="tests")
    try:
        record = run_cell(tiny("regression", "default", loop, epochs=5, steps_per_epoch=2))
    finally:
        WORKLOADS.unregister("regression")
    assert record["status"] == "ok", record.get("reason")
    accuracy = record["accuracy"]
    assert accuracy["train_metric"] == "mae" and accuracy["guard_metric"] == "mae"
    assert accuracy["guard_direction"] == "lower" and set(accuracy["test"]) == {"examples", "mae", "loss"}
    assert record["data"]["source"] == "synthetic" and record["data"]["kind"] == "arrays"
    if loop == "train_on_batch":
        assert record["loop"]["settings"]["lr_halved_at_epoch"] is None


def test_a_run_s_check_refuses_a_pipeline_of_unknown_length_without_steps_per_epoch(tiny):
    from distbench.scenarios import preflight
    from distbench.workloads.registry import WORKLOADS

    class Endless(Regression):
        name = "endless"

        def data(self, source, seed):
            import tensorflow as tf

            x, y = _arrays()
            make = lambda: tf.data.Dataset.from_tensor_slices((x, y)).filter(lambda a, b: True)  # noqa: E731
            return make, make

    WORKLOADS.add(Endless, where="tests")
    try:
        with pytest.raises(UserError, match="endless: its training dataset has no known length.*--steps-per-epoch"):
            preflight.check(tiny("endless", "default", "custom", steps_per_epoch=None, data="auto"))
        found = preflight.check(tiny("endless", "default", "custom", data="auto"))["preflight"]
    finally:
        WORKLOADS.unregister("endless")
    assert found["data"]["kind"] == "tf.data" and found["data"]["train_examples"] is None


@pytest.mark.parametrize("flavour", ["keras3", "tf_keras"])
def test_the_per_example_loss_is_the_configured_one_and_needs_no_registration(flavour):
    """Keras copies a loss through its config: ``Huber(delta=100)`` came back with delta 1.0
    (the custom loop trained it, and every loop's stored test loss was it), and a loss class
    of the user's that Keras has not registered crashed every cell after training."""
    import subprocess
    import sys

    code = textwrap.dedent('''
        from types import SimpleNamespace

        import numpy as np
        import tensorflow as tf
        from distbench import keras_api
        from distbench.workloads.protocol import Workload

        keras = keras_api()

        class Mine(keras.losses.Loss):   # not registered with Keras, with an argument of its own
            def __init__(self, scale):
                super().__init__()
                self.scale = scale

            def call(self, y_true, y_pred):
                return self.scale * tf.reduce_mean(tf.abs(y_true - y_pred), axis=-1)   # both flavours

        y, pred = np.array([[0.0], [0.0]], "float32"), np.array([[1.0], [300.0]], "float32")
        for loss, expected in ((keras.losses.Huber(delta=100.0), [0.5, 100 * 300 - 0.5 * 100 ** 2]),
                               (Mine(2.0), [2.0, 600.0])):
            workload = SimpleNamespace(loss=lambda loss=loss: loss)
            per_example = Workload.training_loss(workload, per_example=True)
            assert np.allclose(np.asarray(per_example(y, pred)), expected), (loss, np.asarray(per_example(y, pred)))
            assert np.isclose(float(Workload.training_loss(workload)(y, pred)), np.mean(expected))   # still averaging
        print("ok")
    ''')
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1" if flavour == "tf_keras" else "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout[-2000:] + result.stderr[-3000:]


def test_a_subclassed_text_classifier_is_built_for_its_cells_too():
    """A subclassed model passed the check before a run (which called it) and reached its
    cells unbuilt: the custom loop's optimizer found no variables."""
    import keras

    from distbench import TextClassifier

    class Net(keras.Model):
        def __init__(self, vocab_size):
            super().__init__()
            self.embed, self.pool = keras.layers.Embedding(vocab_size, 4), keras.layers.GlobalAveragePooling1D()
            self.out = keras.layers.Dense(1, activation="sigmoid")

        def call(self, x, training=False):
            return self.out(self.pool(self.embed(x)))

    class Sub(TextClassifier):
        name, vocab_size, num_classes, sequence_length = "sub", 50, 2, 12

        def build_model(self, vocab_size):
            return Net(vocab_size)

    workload = Sub()
    data = workload.load("synthetic", seed=0)
    model = workload.new_model(data)
    assert model.trainable_variables and workload.check(workload.new_model(data), data)["guard_metric"] == "auc"


def test_lr_halving_with_a_schedule_is_refused_before_any_timing():
    """train_on_batch halves the rate by assigning it: a schedule's failed the cell after its
    first epoch had trained (``'EagerTensor' object has no attribute 'assign'``)."""
    class Scheduled(Regression):
        lr_halving_epoch = 2

        def optimizer(self):
            keras = _keras()
            return keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(0.01, 100, 0.5))

    x, y = _arrays()
    data = inputs.normalize(((x, y), (x, y)), "scheduled", "auto")
    with pytest.raises(UserError, match=r"^regression: lr_halving_epoch = 2: train_on_batch halves the optimizer's "
                                        r"learning rate at that epoch, and this optimizer's follows a schedule; "):
        Scheduled().check(Scheduled().build_model(), data)
    fixed = type("Fixed", (Regression,), {"lr_halving_epoch": 2})()
    assert fixed.check(fixed.build_model(), data)["guard_metric"] == "mae"   # a fixed rate: halved as before


@pytest.mark.parametrize("given, said", [("accuracy", "'accuracy'"), ("function", "rmse")])
def test_a_metric_given_by_name_or_as_a_function_is_refused_saying_what_to_give(given, said):
    """compile takes them; the loops call a metric's update_state and read its name, and the
    refusal read "AttributeError: 'str' object has no attribute 'name'"."""
    def rmse(y_true, y_pred):
        return (y_true - y_pred) ** 2

    class Given(Regression):
        def metrics(self):
            return [given if given != "function" else rmse]

    x, y = _arrays()
    with pytest.raises(UserError, match=rf"^regression: metrics\(\) gives {said}, not a Keras metric object; give "
                                        r"objects, e\.g\. keras\.metrics\.SparseCategoricalAccuracy"):
        Given().check(Given().build_model(), inputs.normalize(((x, y), (x, y)), "given", "auto"))


def test_one_output_in_a_dict_is_refused_saying_to_return_the_tensor():
    """``keras.Model(i, {"progression": Dense(1)(h)})``: refused as labels of shape () that "do
    not fit", and with labels keyed alike as "several outputs", though it has one."""
    keras = _keras()

    class Named(Regression):
        def build_model(self):
            inputs = keras.Input(shape=(5,))
            return keras.Model(inputs, {"progression": keras.layers.Dense(1)(inputs)})

    x, y = _arrays()
    with pytest.raises(UserError, match=r"^regression: the model's output is a dict keyed by \['progression'\]; give "
                                        r"a model whose output is one tensor \(keras\.Model\(inputs, tensor\), not "):
        Named().check(Named().build_model(), inputs.normalize(((x, y), (x, y)), "named", "auto"))
    with pytest.raises(UserError, match=r"returned labels keyed by \['progression'\]: give the label array itself"):
        inputs.normalize(((x, {"progression": y}), (x, {"progression": y})), "named", "auto")


def test_features_of_several_inputs_given_as_a_list_are_refused_saying_to_key_them():
    """``([xa, xb], y)`` for ``keras.Model([a, b], out)``: numpy's "setting an array element
    with a sequence ... inhomogeneous shape" was the refusal."""
    rng = np.random.default_rng(0)
    xa, xb, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 5)), rng.normal(size=(20,))
    with pytest.raises(UserError, match=r"^two\.data\(\) returned features as a list of 2 \(ndarray, ndarray\) of "
                                        r"other shapes; give a model of several inputs a dict keyed by its inputs'"):
        inputs.normalize((([xa, xb], y), ([xa, xb], y)), "two", "auto")
