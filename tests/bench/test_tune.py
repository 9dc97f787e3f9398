import json
from types import SimpleNamespace

import pytest
from distbench.analysis import tuning
from distbench.core.config import CellSpec
from distbench.render import tune_table
from distbench.session import tune
from distbench.storage.results import results_of
from distbench.strategies.hardware import Hardware

from tests.bench.runs import record, samples

CPU_ONLY = Hardware(cpus=2, gpus=(), tpu_address=None, local_tpu_devices=(), libtpu_installed=False)


def test_candidates_cover_loops_spe_and_xla_with_plain_fit_first():
    base = CellSpec.for_profile("quick", workload="", strategy="", loop=None)
    cells, left_out = tune.candidates("reuters_cnn", ["default"], ["fit", "train_on_batch", "custom"], base, CPU_ONLY)
    ids = [c.id for c in cells]
    assert ids[0] == "reuters_cnn-default-fit" and left_out == []
    assert sorted(ids) == sorted([
        "reuters_cnn-default-fit", "reuters_cnn-default-fit-spe10", "reuters_cnn-default-fit-spe50",
        "reuters_cnn-default-fit-xla", "reuters_cnn-default-fit-spe10-xla", "reuters_cnn-default-fit-spe50-xla",
        "reuters_cnn-default-train_on_batch", "reuters_cnn-default-train_on_batch-xla",
        "reuters_cnn-default-custom", "reuters_cnn-default-custom-xla",
    ])


def test_a_steps_per_execution_the_cell_s_steps_cannot_time_is_left_out_and_said_why():
    """30 steps, 5 of them warm-up: calls of 10 steps leave one timed call; of 50, none."""
    base = CellSpec.for_profile("quick", workload="", strategy="", loop=None).replace(epochs=1, steps_per_epoch=30)
    cells, left_out = tune.candidates("reuters_cnn", ["default"], ["fit"], base, CPU_ONLY)
    assert sorted(c.id for c in cells) == ["reuters_cnn-default-fit", "reuters_cnn-default-fit-spe10",
                                           "reuters_cnn-default-fit-spe10-xla", "reuters_cnn-default-fit-xla"]
    assert left_out == ["default: fit with steps_per_execution 50 not tried: 30 steps leave it no timed call after "
                        "the cold start and 5 warm-up steps (run more --steps-per-epoch)"]


def test_candidates_under_several_replicas_leave_out_what_keras_cannot_run_and_say_why():
    from distbench.session.plan import skip_reason

    base = CellSpec.for_profile("quick", workload="", strategy="", loop=None)
    cells, left_out = tune.candidates("reuters_cnn", ["virtual"], ["fit", "custom"], base, CPU_ONLY)
    assert sorted(c.id for c in cells) == sorted([
        "reuters_cnn-virtual-fit", "reuters_cnn-virtual-fit-xla", "reuters_cnn-virtual-custom",
        "reuters_cnn-virtual-custom-xla"])
    (line,) = left_out
    assert line.startswith("virtual: fit with steps_per_execution > 1 not tried") and "keras#19246" in line
    # XLA under two replicas is tried, and skipped with the reason, without starting a process.
    xla = next(c for c in cells if c.id == "reuters_cnn-virtual-custom-xla")
    assert "XLA (jit_compile) fails with several replicas" in skip_reason(xla, CPU_ONLY)
    assert skip_reason(xla.replace(strategy="default"), CPU_ONLY) is None


def test_a_steps_per_execution_that_does_not_divide_an_epoch_is_left_out_and_said_why():
    base = CellSpec.for_profile("quick", workload="", strategy="", loop=None).replace(epochs=4, steps_per_epoch=28)
    cells, left_out = tune.candidates("reuters_cnn", ["default"], ["fit"], base, CPU_ONLY)
    assert sorted(c.id for c in cells) == ["reuters_cnn-default-fit", "reuters_cnn-default-fit-xla"]
    assert left_out == ["default: fit with steps_per_execution 10, 50 not tried: it does not divide the 28 steps of "
                        "an epoch, which fit would round up to whole calls and train more (give --steps-per-epoch a "
                        "multiple of 50)"]
    cells, left_out = tune.candidates("reuters_cnn", ["default"], ["fit"], base.replace(keras="tf_keras"), CPU_ONLY)
    assert len(cells) == 6 and left_out == []   # tf-keras runs an epoch's last call short


def _cell(cell, medians_ms, loop="fit", spe=1, jit=False, guard_status="ok", init_seed=None, worse=None):
    reps = []
    for i, m in enumerate(medians_ms):
        r = record(cell, samples(m, seed=i, spread=0.02))
        r["config"].update({"strategy": "default", "loop": loop, "steps_per_execution": spe, "jit_compile": jit,
                            "init_seed": init_seed})
        r["loop"] = {"settings": {"steps_per_execution": spe}, "notes": []}
        r["accuracy_guard"] = {"status": guard_status, **({} if worse is None else {"worse": worse})}
        reps.append(r)
    return reps


def test_rank_orders_accepted_by_median_with_speedups_and_rejects_what_learns_worse():
    run = {
        "w-default-fit": _cell("w-default-fit", [10, 10.1, 9.9]),
        "w-default-fit-spe50": _cell("w-default-fit-spe50", [8, 8.1, 7.9], spe=50),
        "w-default-custom": _cell("w-default-custom", [8.2, 8.0, 8.1], loop="custom"),
        "w-default-custom-xla": _cell("w-default-custom-xla", [5, 5, 5], loop="custom", jit=True, guard_status="low"),
        "w-default-fit-init1": _cell("w-default-fit-init1", [10, 10, 10], init_seed=1),
    }
    ranked = tuning.rank(results_of(run), set(run) - {"w-default-fit-init1"})
    assert [r.result.id for r in ranked] == ["w-default-fit-spe50", "w-default-custom", "w-default-fit",
                                        "w-default-custom-xla"]
    best = ranked[0]
    assert best.speedup == pytest.approx(10 / 8, rel=0.02)
    assert not ranked[-1].accepted and ranked[-1].guard == "low"
    rows = tune_table.tune_rows(ranked)
    assert rows[0][:5] == [1, "default", "fit", 50, "off"] and rows[-1][0] == "rejected"
    ranked[1].result.first.setdefault("loop", {})["notes"] = ["a note on the custom loop " + "long " * 30]
    text = tune_table.tune_text(ranked, "table").splitlines()   # the terminal's: notes below, 120 columns
    assert text[0].split()[:3] == ["rank", "strategy", "loop"] and "notes" not in text[0]
    assert text[6].startswith("  note, 2 (custom, steps/exec 1): a note on the custom loop long")
    assert max(map(len, text)) <= 120
    assert json.loads(tune_table.tune_text(ranked, "json"))[1]["notes"].startswith("a note on the custom loop")
    # tune --format json: one document with the verdict, numbers as numbers (it was the rows alone, "0.70").
    doc = json.loads(tune_table.tune_document(ranked, "Fastest ...", ["  not ranked: x: skipped: no GPU"], None, 0))
    assert doc["ranking"][0]["rank"] == 1 and doc["ranking"][0]["speedup_vs_plain_fit"] == pytest.approx(1.25, rel=0.02)
    assert doc["ranking"][-1]["rank"] is None and doc["ranking"][-1]["accepted"] is False
    assert isinstance(doc["ranking"][0]["mean_step_s"], float) and doc["verdict"] == "Fastest ..."
    assert doc["not_ranked"] == ["x: skipped: no GPU"] and doc["confirmation"] is None and doc["exit_status"] == 0
    cut = json.loads(tune_table.tune_document(ranked, "Interrupted: ...", [], None, 130, interrupted=True))
    assert cut["interrupted"] and all(row["rank"] is None for row in cut["ranking"]) and cut["exit_status"] == 130
    verdict = tune_table.tune_verdict(ranked)
    assert verdict.startswith("Fastest by mean step: default fit (steps/exec 50, XLA off), 8.0")
    assert "1.25x default's plain fit in the ranking (processes run apart, no interval). Not confirmed" in verdict
    # Confirmed: the pairs' figure is given as the speed-up that decides (the ranking's 2.04x had stood alone
    # beside pairs that read 1.30x [1.06, 1.59]); an undecided one says the ranking's is not shown.
    pairs = SimpleNamespace(judgement=SimpleNamespace(pairs=3, ratio=0.77, interval=(0.63, 0.94)), verdict="faster")
    assert ("Interleaved with plain fit (3 pairs), which decides: B/A 0.77 [0.63, 0.94] (a speed-up of 1.30x [1.06x, "
            "1.59x]), CONFIRMED faster than plain fit.") in tune_table.tune_verdict(ranked, pairs)
    pairs = SimpleNamespace(judgement=SimpleNamespace(pairs=3, ratio=0.80, interval=(0.40, 1.60)), verdict="undecided")
    assert tune_table.tune_verdict(ranked, pairs).endswith(
        "undecided against plain fit: the ranking's speed-up is not shown.")
    plain, a, b = tune.confirmation(ranked)
    assert plain.id == "w-default-fit" and b.spec(plain).id == "w-default-fit-spe50"


def test_a_candidate_that_learns_better_than_the_band_is_ranked_not_rejected():
    """A lower MAE than every reference seed is "low" on the guard, not worse: tune rejected
    it as learning worse, and named a slower candidate the fastest."""
    run = {
        "w-default-fit": _cell("w-default-fit", [10, 10.1, 9.9]),
        "w-default-fit-spe50": _cell("w-default-fit-spe50", [4, 4, 4], spe=50, guard_status="low", worse=False),
        "w-default-custom": _cell("w-default-custom", [8.2, 8.0, 8.1], loop="custom", guard_status="high", worse=True),
    }
    ranked = tuning.rank(results_of(run))
    assert [(r.result.id, r.accepted) for r in ranked] == [
        ("w-default-fit-spe50", True), ("w-default-fit", True), ("w-default-custom", False)]
    assert tune_table.tune_verdict(ranked).startswith("Fastest by mean step: default fit (steps/exec 50")


def test_rank_compares_means_of_per_step_time_like_for_like():
    # Per-step samples 10 ms with a slow step in 5 (mean 12 ms, median 10 ms) against 50-step
    # averages of the same steps (all 12 ms): by medians plain fit would look 17% faster.
    steps = [0.010, 0.010, 0.010, 0.010, 0.020] * 20
    run = {"w-default-fit": _cell("w-default-fit", [10]), "w-default-fit-spe50": _cell("w-default-fit-spe50", [12], spe=50)}
    run["w-default-fit"][0]["steps"]["samples"] = steps
    run["w-default-fit-spe50"][0]["steps"]["samples"] = [0.012] * 2
    ranked = {r.result.id: r for r in tuning.rank(results_of(run))}
    assert ranked["w-default-fit"].result.mean_step == pytest.approx(0.012)
    assert ranked["w-default-fit-spe50"].speedup == pytest.approx(1.0)


@pytest.mark.parametrize("loop, spe", [("fit", 4), ("train_on_batch", 1), ("custom", 1)])
def test_every_loop_trains_with_xla(tiny, loop, spe):
    from distbench.scenarios.tasks import run_cell

    rec = run_cell(tiny("reuters_cnn", "default", loop, steps_per_epoch=12, steps_per_execution=spe, jit_compile=True))
    assert rec["status"] == "ok" and rec["cell"].endswith("-xla")
    assert rec["loop"]["settings"]["jit_compile"] is True


def test_cross_device_ops_are_a_tune_axis_on_two_gpus_only():
    import dataclasses

    from distbench.core.config import CellSpec

    base = CellSpec.for_profile("quick", workload="", strategy="", loop=None)
    two_gpus = dataclasses.replace(CPU_ONLY, gpus=("/physical_device:GPU:0", "/physical_device:GPU:1"))
    cells, _ = tune.candidates("reuters_cnn", ["mirrored"], ["custom"], base, two_gpus)
    assert {c.cross_device_ops for c in cells} == {"auto", "nccl", "hierarchical_copy", "one_device"}
    cells, _ = tune.candidates("reuters_cnn", ["mirrored"], ["custom"], base, CPU_ONLY)
    assert {c.cross_device_ops for c in cells} == {"auto"}


def test_with_fit_left_out_the_custom_loop_is_still_set_against_plain_fit_and_its_pairs_say_so():
    """`tune --loop custom`: plain fit runs as the guard's reference, not as a candidate; the
    table read `vs plain fit -`, and the winner's pairs were named after the fit cell alone."""
    run = {"w-default-fit": _cell("w-default-fit", [10, 10.1, 9.9]),
           "w-default-custom": _cell("w-default-custom", [8.2, 8.0, 8.1], loop="custom")}
    (custom,) = tuning.rank(results_of(run), {"w-default-custom"})
    assert custom.speedup == pytest.approx(10 / 8.1, rel=0.02)
    sides = tune.confirmation([custom])
    assert tune_table.pair_label(sides) == "w-default, A plain fit / B fastest: custom"


def test_what_tune_did_not_rank_fits_120_columns():
    reason = ("default: fit with steps_per_execution 50 not tried: 20 steps leave it no timed call after the cold "
              "start and 5 warm-up steps (run more --steps-per-epoch)")
    lines = tune_table.not_ranked_lines([reason], {})
    assert max(map(len, lines)) <= 120 and " ".join(part.strip() for part in lines) == f"not ranked: {reason}"


def test_mirrored_s_other_all_reduces_are_candidates_set_against_plain_fit_with_tensorflow_s_choice():
    """On two GPUs the nccl, hierarchical_copy and one_device fit cells are plain fit's
    settings too: the last of them had become "plain fit", every speed-up was against
    one_device, and a winner of fit with nccl read as "plain fit itself", unconfirmed."""
    def mirrored(cell, ms, loop="fit", ops="auto"):
        reps = _cell(cell, ms, loop=loop)
        for r in reps:
            r["config"].update(strategy="mirrored", cross_device_ops=ops)
        return reps

    run = {"w-mirrored-fit": mirrored("w-mirrored-fit", [10, 10, 10]),
           "w-mirrored-fit-nccl": mirrored("w-mirrored-fit-nccl", [6, 6, 6], ops="nccl"),
           "w-mirrored-fit-one_device": mirrored("w-mirrored-fit-one_device", [20, 20, 20], ops="one_device")}
    ranked = tuning.rank(results_of(run))
    assert [r.result.id for r in ranked][0] == "w-mirrored-fit-nccl"
    assert all(r.plain.id == "w-mirrored-fit" for r in ranked)
    assert ranked[0].speedup == pytest.approx(10 / 6, rel=0.03)
    verdict = tune_table.tune_verdict(ranked)
    assert "fit (steps/exec 1, XLA off, all-reduce nccl)" in verdict and "plain fit itself" not in verdict
    plain, a, b = tune.confirmation(ranked)
    assert plain.id == "w-mirrored-fit" and b.spec(plain).id == "w-mirrored-fit-nccl"


def test_a_candidate_a_process_of_which_crashed_is_not_ranked_and_said_why():
    run = {"w-default-fit": _cell("w-default-fit", [10, 10, 10]),
           "w-default-custom": _cell("w-default-custom", [5, 5, 5], loop="custom")}
    run["w-default-custom"][1] = {"cell": "w-default-custom", "status": "error", "reason": "worker died (SIGKILL)",
                                  "config": run["w-default-custom"][0]["config"]}
    results = results_of(run)
    assert [r.result.id for r in tuning.rank(results)] == ["w-default-fit"]
    assert tune_table.not_ranked_lines([], results) == [
        "  not ranked: w-default-custom: 1 of 3 processes failed (worker died (SIGKILL))"]
    crashed_fit = {**run["w-default-custom"][1], "cell": "w-default-fit"}   # plain fit's own crash: no speed-up
    run = {"w-default-fit": run["w-default-fit"][:2] + [crashed_fit],
           "w-default-custom": _cell("w-default-custom", [5, 5, 5], loop="custom")}
    (custom,) = tuning.rank(results_of(run), {"w-default-custom"})
    assert custom.speedup is None and custom.plain is None


def test_a_tf_keras_candidate_is_set_against_tf_keras_plain_fit_never_the_guard_s_keras_3():
    """`tune --keras tf_keras --loop custom`: the guard's reference (Keras 3 fit) had become
    plain fit, and the confirmation's side B ran the Keras 3 custom loop, not the winner."""
    run = {"w-default-fit": _cell("w-default-fit", [10, 10, 10]),   # the guard's reference, Keras 3
           "w-default-custom-tf_keras": _cell("w-default-custom-tf_keras", [8, 8, 8], loop="custom")}
    for r in run["w-default-custom-tf_keras"]:
        r["config"]["keras"] = "tf_keras"
    (custom,) = tuning.rank(results_of(run), {"w-default-custom-tf_keras"})
    assert custom.plain is None and custom.speedup is None
    plain, a, b = tune.confirmation([custom])
    assert plain.keras == b.spec(plain).keras == "tf_keras" and b.spec(plain).id == "w-default-custom-tf_keras"
