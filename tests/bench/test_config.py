import pytest
from distbench.core.config import CellSpec
from distbench.core.errors import UserError


def spec(**fields):
    return CellSpec("reuters_cnn", "virtual", "fit", **fields)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"steps_per_epoch": 0}, r"Steps per epoch \(--steps-per-epoch\) must be an integer >= 1; received 0"),
        ({"epochs": 0}, r"Epochs \(--epochs\) must be an integer >= 1"),
        ({"devices": -2}, r"Devices \(--devices\) must be an integer >= 1; received -2"),
        ({"global_batch": 33}, r"Global batch 33 is not divisible by 2 virtual devices"),
        ({"warmup_steps": -1}, r"Warm-up steps \(--warmup-steps\) must be"),
        ({"epochs": 1, "steps_per_epoch": 3, "warmup_steps": 5}, r"no steady-state step"),
        ({"deadline_s": 0}, r"Deadline \(--deadline\) must be positive"),
        ({"connect_deadline_s": -1.0}, r"Connect deadline \(--connect-deadline\) must be positive seconds, at most 2\.592e\+06 \(30 days\); received -1.0"),
    ],
)
def test_impossible_sizes_are_refused_with_what_is_valid(fields, message):
    with pytest.raises(UserError, match=message):
        spec(**fields).validate()


def test_ids_are_readable():
    assert spec().id == "reuters_cnn-virtual-fit"
    assert CellSpec("matmul", "default", None).id == "matmul-default"


def test_round_trip_through_json_values():
    s = CellSpec.for_profile("full", workload="multibranch", strategy="mirrored", loop="custom")
    assert CellSpec.from_dict(s.to_dict()) == s
    assert s.epochs == 10 and s.steps_per_epoch is None and s.matmul_shape == (10000, 100, 100000)


def test_unknown_profile():
    with pytest.raises(UserError, match="Unknown profile 'fast'. Known: quick, full"):
        CellSpec.for_profile("fast", workload="matmul", strategy="default", loop=None)


def test_prefetch_names_the_cell_and_bad_values_are_refused():
    from distbench.core.config import CellSpec
    from distbench.core.errors import UserError

    assert CellSpec("w", "default", "custom").id == "w-default-custom"            # auto: ids unchanged
    assert CellSpec("w", "default", "custom", prefetch="off").id == "w-default-custom-prefetch_off"
    assert CellSpec("w", "default", "custom", prefetch="2").id == "w-default-custom-prefetch_2"
    CellSpec("w", "default", "custom", prefetch="2").validate()
    for bad in ("0", "none", "-1"):
        with pytest.raises(UserError, match=f"Bad prefetch '{bad}': give auto"):
            CellSpec("w", "default", "custom", prefetch=bad).validate()


def test_fit_s_calls_are_counted_as_its_step_clock_splits_them():
    """A call ends with its epoch: 3 epochs of 4 steps at --steps-per-execution 10 are three
    calls of 4, and the clock drops the cold start's and two for 5 warm-up steps, leaving none
    (the rule had rounded the warm-up by 10 and let the cell fail after training). A target
    cell trains as many epochs as --max-steps takes, and is not refused by its profile's."""
    from distbench.core.config import CellSpec
    from distbench.core.fit_calls import calls_problem

    assert calls_problem(3, 4, 5, 10).startswith("--steps-per-execution 10 leaves fit no steady call in 3 x 4")
    assert calls_problem(4, 4, 5, 10) == ""   # a fourth call is timed
    assert calls_problem(2, 100, 5, 100) and not calls_problem(2, 100, 5, 50)
    spec = CellSpec.for_profile("quick", workload="reuters_cnn", strategy="default", loop="fit",
                                steps_per_execution=100)
    with pytest.raises(UserError, match="^--steps-per-execution 100 leaves fit no steady call"):
        spec.validate()
    spec.replace(target="accuracy=0.5", eval_every=300).validate()   # its worker checks the epochs it trains


def test_a_steps_per_execution_that_does_not_divide_an_epoch_is_refused_for_fit():
    """Keras 3 rounds an epoch up to whole calls: the tabular example's 4 x 28 steps trained
    120 in calls of 10 and 200 in calls of 50, unsaid, and tune ranked the calls of 50 on an
    error they had trained 88 steps more for."""
    from distbench.core.config import CellSpec
    from distbench.core.fit_calls import rounding_problem

    assert rounding_problem(28, 10).startswith("--steps-per-execution 10 does not divide the 28 steps of an epoch: "
                                               "fit runs whole calls, 30 steps an epoch")
    assert rounding_problem(28, 7) == rounding_problem(28, 1) == rounding_problem(None, 10) == ""
    spec = CellSpec.for_profile("quick", workload="reuters_cnn", strategy="default", loop="fit", epochs=4,
                                steps_per_epoch=28, steps_per_execution=50)
    with pytest.raises(UserError, match="^--steps-per-execution 50 does not divide the 28 steps"):
        spec.validate()
    spec.replace(steps_per_execution=14).validate()
    spec.replace(loop="custom").validate()   # fit's setting only
    spec.replace(keras="tf_keras").validate()   # tf-keras runs an epoch's last call short: 112 steps in calls of 50
