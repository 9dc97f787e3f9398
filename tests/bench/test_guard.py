import pytest
from distbench.analysis import guard
from distbench.core.config import CellSpec
from distbench.render import guard_text, run_table
from distbench.storage.results import results_of

from tests.bench.runs import record as make_record


def _cell(strategy="default", loop="fit", accuracy=0.5, **config):
    rec = make_record(f"w-{strategy}-{loop}", [0.01, 0.011])
    rec["config"].update({"workload": "w", "strategy": strategy, "loop": loop, "data": "synthetic", "seed": 0,
                          "epochs": 2, "steps_per_epoch": 100, "global_batch": 32, "eval_examples": 500,
                          "profile": "quick", "scaling": "strong", "steps_per_execution": 1, "init_seed": None,
                          **config})
    rec["accuracy"] = {"test": {"accuracy": accuracy}}
    rec["batch"]["replicas"] = 2 if strategy != "default" else 1
    return rec


def _run(*cells):
    out = {}
    for c in cells:
        cid = "-".join([c["config"]["strategy"], c["config"]["loop"], str(c["config"]["init_seed"])])
        out.setdefault(cid, []).append(c)
    return out


def test_reference_band_is_a_prediction_interval_hand_computed():
    # values 0.40, 0.46, 0.43: mean 0.43, sd 0.03 (n-1); t(0.975, 2) = 4.3027, sqrt(1 + 1/3) = 1.1547:
    # 0.43 ± 0.14905 -> 0.28095 .. 0.57905
    run = _run(_cell(accuracy=0.40), _cell(accuracy=0.46, init_seed=1), _cell(accuracy=0.43, init_seed=2),
               _cell("virtual", "custom", accuracy=0.35), _cell("virtual", "fit", accuracy=0.25),
               _cell("virtual", "train_on_batch", accuracy=0.60))
    verdicts = guard.apply(results_of(run))
    ref = verdicts["virtual-custom-None"]["reference"]
    assert ref["seeds"] == [0, 1, 2]
    assert ref["mean"] == pytest.approx(0.43) and ref["sd"] == pytest.approx(0.03)
    assert (ref["low"], ref["high"]) == (pytest.approx(0.28095, abs=1e-5), pytest.approx(0.57905, abs=1e-5))
    # Inside the band, but the band (± 0.149) cannot flag a drop of less than 0.149: not "ok".
    assert verdicts["virtual-custom-None"]["status"] == "underpowered"
    assert ref["smallest_drop"] == pytest.approx(0.14905, abs=1e-5) and ref["powered"] is False
    assert verdicts["virtual-fit-None"]["status"] == "low"
    assert verdicts["virtual-train_on_batch-None"]["status"] == "high"
    assert guard_text.guard_message(verdicts["virtual-fit-None"]) == (
        "accuracy 0.250 vs reference 0.430 (sd 0.030 over 3 seeds); accepted 0.281-0.579, the band ± 0.149")
    lines = guard_text.power_lines(results_of(run))
    assert len(lines) == 1 and "TOO LITTLE POWER at this profile" in lines[0] and "beyond 0.149" in lines[0]
    assert run["virtual-fit-None"][0]["accuracy_guard"]["status"] == "low"   # stored in the record
    # Flagged on accuracy's bad side only: learning better than every seed is shown ("high"), not flagged.
    assert set(guard.flagged(results_of(run))) == {"virtual-fit-None"}


def test_band_is_never_narrower_than_the_floor():
    run = _run(_cell(accuracy=0.5), _cell(accuracy=0.5, init_seed=1), _cell("virtual", "fit", accuracy=0.485))
    verdict = guard.apply(results_of(run))["virtual-fit-None"]
    assert verdict["reference"]["low"] == pytest.approx(0.5 - guard.FLOOR)
    assert verdict["status"] == "ok"                      # a band of ± 0.02 flags a drop of 0.05
    assert guard_text.power_lines(results_of(run)) == [
        "default: flags a drop of accuracy beyond 0.020 below 0.500 (2 seeds of default-fit-None)."]


def test_cells_without_a_comparable_reference_are_unguarded_and_say_why():
    run = _run(_cell(accuracy=0.4), _cell("virtual", "fit", accuracy=0.1),
               _cell("mirrored", "fit", accuracy=0.1, epochs=5),
               _cell("virtual", "custom", accuracy=0.4, scaling="weak"))
    verdicts = {c: guard_text.guard_message(v) for c, v in guard.apply(results_of(run)).items()}
    assert verdicts["virtual-fit-None"] == (
        "not guarded: the reference ran with one seed only (default-fit-None); its spread is unknown")
    assert "no reference cell" in verdicts["mirrored-fit-None"]
    assert "weak scaling" in verdicts["virtual-custom-None"]
    assert not guard.flagged(results_of(run))


def test_a_reference_that_learned_nothing_judges_no_cell_and_says_so():
    """Shuffled labels: every cell, the reference too, scores the majority class's share.
    Inside its band, a cell that learns nothing had read "ok"."""
    def at(accuracy, *args, **config):
        rec = _cell(*args, accuracy=accuracy, **config)
        rec["data"]["majority_class_share"] = 0.36
        return rec

    run = _run(at(0.36), at(0.37, init_seed=1), at(0.365, init_seed=2), at(0.36, "virtual", "custom"),
               at(0.62, "virtual", "fit"), at(0.05, "virtual", "train_on_batch"))
    results = results_of(run)
    verdicts = guard.apply(results)
    # Far below even the majority class's share: still LOW, flagged (tune does not accept it).
    assert verdicts["virtual-train_on_batch-None"]["status"] == "low" and guard.worse(verdicts["virtual-train_on_batch-None"])
    assert verdicts["virtual-custom-None"]["status"] == "chance" and not guard.worse(verdicts["virtual-custom-None"])
    assert verdicts["virtual-fit-None"]["status"] == "high"          # one that learns is still shown better
    assert verdicts["virtual-custom-None"]["reference"]["at_chance"] is True
    assert guard_text.guard_cell(verdicts["virtual-custom-None"]).startswith("REFERENCE AT CHANCE: accuracy 0.360")
    (line,) = guard_text.power_lines(results)
    assert line.startswith("default: THE REFERENCE DID NOT LEARN: accuracy 0.365 over 3 seeds of default-fit-None, "
                           "within 0.02 of chance (0.360, the test set's majority-class share)"), line
    del results["virtual-train_on_batch-None"]   # flagged; the outcome's line is for a run that flagged none
    assert guard_text.guard_outcome(results).endswith("(1 judged; 2 not, their reference at chance).")
    # The same accuracies with a majority share of 0.25 learned: judged as before.
    for records in run.values():
        records[0]["data"]["majority_class_share"] = 0.25
        records[0].pop("accuracy_guard")
    assert guard.apply(results_of(run))["virtual-custom-None"]["status"] == "ok"


def test_the_majority_share_of_class_ids_and_one_hot_rows_not_of_multi_hot_or_regression_labels():
    import numpy as np

    from distbench.core.stats import majority_share

    assert majority_share(np.array([0, 1, 1, 2])) == 0.5 and majority_share(np.eye(3)[[0, 0, 1]]) == 0.6667
    assert majority_share(np.array([[1.0], [1.0], [0.0]])) == 0.6667
    multi_hot = np.array([[1, 1], [0, 1], [0, 0], [1, 0]])   # two binary labels: chance is 0.5, not a class's share
    assert majority_share(multi_hot) is None and majority_share(np.array([0.5, 1.2])) is None
    assert majority_share(None) is None


def test_an_auc_at_one_half_is_chance_and_an_error_has_none():
    run = _run(*(_cell(accuracy=0.51, init_seed=k) for k in (None, 1)))
    for records in run.values():
        records[0]["accuracy"] = {"test": {"auc": 0.51}, "guard_metric": "auc"}
    assert guard.apply(results_of(run))["default-fit-None"]["status"] == "chance"
    for records in run.values():
        records[0]["accuracy"] = {"test": {"mae": 0.51}, "guard_metric": "mae", "guard_direction": "lower"}
        records[0].pop("accuracy_guard")
    assert guard.apply(results_of(run))["default-fit-None"]["status"] == "ok"


def test_replicates_add_the_missing_reference_seeds_once_per_group():
    base = CellSpec.for_profile("quick", workload="reuters_cnn", strategy="virtual", loop="fit")
    cells = [base, base.replace(loop="custom"), base.replace(workload="matmul", loop=None),
             base.replace(strategy="default")]
    ids = [c.id for c in guard.replicates(cells, seeds=3)]
    assert ids == ["reuters_cnn-default-fit-init1", "reuters_cnn-default-fit-init2"]
    assert guard.replicates(cells, seeds=1) == []
    assert [c.id for c in guard.replicates([base.replace(steps_per_execution=10, strategy="default")], 2)] == [
        "reuters_cnn-default-fit", "reuters_cnn-default-fit-init1"]


def test_with_replicates_puts_each_workload_s_seeds_after_its_cells():
    base = CellSpec.for_profile("quick", workload="reuters_cnn", strategy="virtual", loop="fit")
    cells = [base, base.replace(workload="multibranch"), base.replace(workload="matmul", loop=None)]
    ids = [c.id for c in guard.with_replicates(cells, seeds=2)]
    assert ids == ["reuters_cnn-virtual-fit", "reuters_cnn-default-fit", "reuters_cnn-default-fit-init1",
                   "multibranch-virtual-fit", "multibranch-default-fit", "multibranch-default-fit-init1",
                   "matmul-virtual"]
    # A workload's cells need not be together: its seeds still come once, after its last cell.
    ids = [c.id for c in guard.with_replicates([base, cells[1], base.replace(loop="custom")], seeds=2)]
    assert ids == ["reuters_cnn-virtual-fit", "multibranch-virtual-fit", "multibranch-default-fit",
                   "multibranch-default-fit-init1", "reuters_cnn-virtual-custom", "reuters_cnn-default-fit",
                   "reuters_cnn-default-fit-init1"]


def test_table_names_the_metric_and_each_seed_s_row():
    run = _run(_cell(accuracy=0.40), _cell(accuracy=0.46, init_seed=1), _cell(accuracy=0.43, init_seed=2),
               _cell("virtual", "fit", accuracy=0.25))
    run["default-fit-1"][0]["cell"] = "w-default-fit-init1"
    run["default-fit-2"][0]["cell"] = "w-default-fit-init2"
    results = results_of(run)
    guard.apply(results)
    rows = {(r[1], r[3]): r for r in (run_table.row(result) for result in results.values())}
    assert set(rows) == {("default", "fit"), ("default", "fit-init1"), ("default", "fit-init2"), ("virtual", "fit")}
    column = run_table.HEADERS.index("accuracy guard")
    assert rows["default", "fit"][column] == "too little power: accuracy 0.400 in 0.281-0.579"
    assert rows["virtual", "fit"][column] == "LOW: accuracy 0.250 in 0.281-0.579"


# --- the guard against real training, with a loop that trains wrongly ---------------------

@pytest.fixture
def wrong_loops():
    """Two custom loops that train wrongly, registered for the test only.

    ``misaligned``: a classic input bug, features and labels shuffled separately, so
    every replica learns from labels that belong to other examples.
    ``one_replica``: only replica 0's gradients are applied (the others' are zeroed).
    """
    import tensorflow as tf
    from distbench.loops import LOOPS
    from distbench.loops.custom import CustomLoop

    class MisalignedLoop(CustomLoop):
        name = "misaligned"
        summary = "custom loop whose labels do not belong to its features (a bug)"

        def dataset(self, ctx):
            d, cfg = ctx.data, ctx.config
            x = tf.data.Dataset.from_tensor_slices(d.x_train).shuffle(len(d.y_train), seed=cfg.seed)
            y = tf.data.Dataset.from_tensor_slices(d.y_train).shuffle(len(d.y_train), seed=cfg.seed + 1)
            return tf.data.Dataset.zip((x, y)).batch(cfg.global_batch, drop_remainder=True).repeat()

    class OneReplicaLoop(CustomLoop):
        name = "one_replica"
        summary = "custom loop that applies the gradients of replica 0 only (a bug)"

        def gradients(self, grads):
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            keep = tf.cast(tf.equal(replica, 0), grads[0].dtype)
            return [g * keep for g in grads]

    class SlowLearnerLoop(CustomLoop):
        name = "lr_tenth"
        summary = "custom loop whose optimizer has a tenth of the learning rate (a subtle bug)"

        def optimizer(self, ctx):
            import keras

            return keras.optimizers.Nadam(learning_rate=ctx.workload.learning_rate / 10)

    loops = (MisalignedLoop, OneReplicaLoop, SlowLearnerLoop)
    for loop in loops:
        LOOPS.register(loop)
    try:
        yield [loop.name for loop in loops]
    finally:
        for loop in loops:
            LOOPS.unregister(loop.name)


@pytest.mark.slow
def test_guard_flags_wrong_loops_and_passes_the_correct_ones(tiny, wrong_loops):
    from distbench.scenarios.tasks import run_cell

    # 150 steps on two replicas: long enough for correct loops to beat the majority class
    # (0.245 of this test set) clearly, on 1,000 test examples. (At 200 steps the
    # one-replica loop catches up to within the reference's spread: it is training on
    # half of each batch. The guard flags what learns worse than seeds vary, no less.)
    spec = tiny("reuters_cnn", "virtual", "fit", steps_per_epoch=150, eval_examples=1000)
    # The correct custom loop is the control the wrong ones (its subclasses) differ from;
    # train_on_batch's learning is tests/bench/test_runner.py's (a short run beats the majority class).
    cells = [spec.replace(loop=loop) for loop in ("fit", "custom", *wrong_loops)]
    run = {c.id: [run_cell(c)] for c in guard.with_replicates(cells, seeds=guard.DEFAULT_SEEDS)}
    verdicts = guard.apply(results_of(run))
    for loop in ("fit", "custom"):
        # Not flagged ("underpowered" when this short cell's band is wider than 0.05: said so, not "ok").
        assert verdicts[f"reuters_cnn-virtual-{loop}"]["status"] in ("ok", "underpowered"), \
            verdicts[f"reuters_cnn-virtual-{loop}"]
    for loop in wrong_loops:
        wrong = verdicts[f"reuters_cnn-virtual-{loop}"]
        assert wrong["status"] == "low", wrong
        assert wrong["value"] < wrong["reference"]["low"]


def _mae_cell(strategy="default", loop="fit", mae=50.0, **config):
    rec = _cell(strategy, loop, **config)
    rec["accuracy"] = {"test": {"mae": mae, "loss": mae * 80}, "guard_metric": "mae", "guard_direction": "lower"}
    return rec


def test_a_lower_is_better_metric_is_flagged_when_it_rises_and_its_band_is_relative():
    # MAE 50, 52, 51 over three seeds: mean 51, sd 1 -> ± 4.97 (t 4.3027 x sqrt(4/3)); floor 2% of 51.
    run = _run(_mae_cell(mae=50.0), _mae_cell(mae=52.0, init_seed=1), _mae_cell(mae=51.0, init_seed=2),
               _mae_cell("virtual", "fit", mae=70.0), _mae_cell("virtual", "custom", mae=40.0),
               _mae_cell("virtual", "train_on_batch", mae=53.0))
    verdicts = guard.apply(results_of(run))
    worse, better, inside = (verdicts[f"virtual-{lp}-None"] for lp in ("fit", "custom", "train_on_batch"))
    assert (worse["status"], worse["worse"]) == ("high", True)       # a higher error: worse
    assert (better["status"], better["worse"]) == ("low", False)     # a lower error: better, not flagged
    # Inside the band, but ± 4.97 cannot flag a rise of 5% of 51 (2.55): underpowered, not "ok".
    assert inside["status"] == "underpowered"
    assert set(guard.flagged(results_of(run))) == {"virtual-fit-None"}
    ref = worse["reference"]
    assert ref["direction"] == "lower" and ref["scale"] == pytest.approx(51.0)


def test_an_error_band_is_never_narrower_than_two_percent_of_the_reference():
    run = _run(_mae_cell(mae=50.0), _mae_cell(mae=50.0, init_seed=1), _mae_cell("virtual", "fit", mae=50.9),
               _mae_cell("virtual", "custom", mae=51.1))
    verdicts = guard.apply(results_of(run))
    assert verdicts["virtual-fit-None"]["reference"]["high"] == pytest.approx(51.0)
    assert verdicts["virtual-fit-None"]["status"] == "ok" and verdicts["virtual-custom-None"]["worse"]


def test_a_regression_on_whole_number_targets_has_no_majority_class(tiny, monkeypatch):
    """Diabetes-like targets (whole numbers from 25 to 346) in arrays: the record stored the
    commonest value's share, 0.0337, as the guard's chance. A classifier's is kept."""
    import numpy as np
    from distbench import Workload, workloads
    from distbench.scenarios.tasks import run_cell

    class Scores(Workload):
        name = "scores"
        classes = False

        def build_model(self):
            import keras

            units, activation = (3, "softmax") if self.classes else (1, None)
            return keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(units, activation=activation)])

        def loss(self):
            return "sparse_categorical_crossentropy" if self.classes else "mse"

        def metrics(self):
            import keras

            return [keras.metrics.SparseCategoricalAccuracy(name="accuracy") if self.classes
                    else keras.metrics.MeanAbsoluteError(name="mae")]

        def data(self, source, seed):
            rng = np.random.default_rng(seed)
            x = rng.standard_normal((96, 4)).astype(np.float32)
            y = np.array([0, 0, 1, 2] * 24) if self.classes else rng.integers(25, 347, 96).astype(np.float32)
            return (x, y), (x, y)

    found = {}
    for classes in (False, True):
        monkeypatch.setattr(Scores, "classes", classes)
        monkeypatch.setattr(workloads, "get", lambda name: Scores())
        record = run_cell(tiny("scores", "default", "custom", data="auto", global_batch=8, steps_per_epoch=8,
                               warmup_steps=1, eval_examples=96))
        assert record["status"] == "ok", record.get("reason")
        found[classes] = record["data"]["majority_class_share"]
    assert found == {False: None, True: 0.5}
