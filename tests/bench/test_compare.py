import pytest

from bench.compare import TOO_NOISY, compare_runs, machine_diff, regressions, too_noisy
from bench.tables import noisy_line, regression_line
from bench.errors import UserError
from bench.storage import load
from tests.bench.runs import INFO, record, samples, save

CELL = "reuters_cnn-default-fit"


def run_with(tmp_path, median_ms, accuracy=0.5, seed=0, cell=CELL, info=INFO, spread=0.1):
    return load(save(tmp_path, {cell: [record(cell, samples(median_ms, seed=seed, spread=spread), accuracy)]}, info=info))


def test_same_distribution_is_same(tmp_path):
    a, b = run_with(tmp_path, 10.0, seed=1), run_with(tmp_path, 10.0, seed=2)
    (c,) = compare_runs(a, b).cells
    assert c.verdict == "same" and c.ratio == pytest.approx(1.0, abs=0.03)
    assert c.ratio_ci[0] <= c.ratio <= c.ratio_ci[1]
    assert regressions(compare_runs(a, b)) == []


def test_fifty_percent_slower_is_slower_and_fails_the_check(tmp_path):
    a, b = run_with(tmp_path, 10.0, seed=1), run_with(tmp_path, 15.0, seed=2)
    comparison = compare_runs(a, b)
    (c,) = comparison.cells
    assert c.verdict == "slower" and c.ratio == pytest.approx(1.5, rel=0.05) and c.p_value < 1e-10
    assert c.throughput_ratio == pytest.approx(1 / c.ratio)
    (reason,) = regressions(comparison)
    assert reason.kind == "slower" and regression_line(reason).startswith(f"{CELL}: slower, median")


def test_twice_as_fast_is_faster(tmp_path):
    a, b = run_with(tmp_path, 10.0, seed=1), run_with(tmp_path, 5.0, seed=2)
    assert compare_runs(a, b).cells[0].verdict == "faster"


def test_a_significant_shift_inside_the_noise_threshold_is_same(tmp_path):
    # 10% slower with tight samples: Mann-Whitney is sure, but 10% is within run-to-run noise.
    a, b = run_with(tmp_path, 10.0, seed=1, spread=0.02), run_with(tmp_path, 11.0, seed=2, spread=0.02)
    c = compare_runs(a, b).cells[0]
    assert c.p_value < 1e-10 and c.verdict == "same"
    assert compare_runs(a, b, threshold=0.05).cells[0].verdict == "slower"
    assert compare_runs(a, b, overrides={CELL: 0.05}).cells[0].verdict == "slower"


def test_accuracy_loss_beyond_tolerance_fails_the_check(tmp_path):
    a, b = run_with(tmp_path, 10.0, accuracy=0.58, seed=1), run_with(tmp_path, 10.0, accuracy=0.41, seed=2)
    (c,) = compare_runs(a, b).cells
    assert c.accuracy_delta == pytest.approx(-0.17)
    (reason,) = regressions(compare_runs(a, b), accuracy_tolerance=0.05)
    assert "test accuracy 0.580 -> 0.410" in regression_line(reason)
    assert regressions(compare_runs(a, b), accuracy_tolerance=0.2) == []


def test_cells_in_one_run_only_are_listed_as_such(tmp_path):
    a = load(save(tmp_path, {CELL: [record(CELL, samples(10))], "x-default-fit": [record("x-default-fit", samples(5))]}))
    b = load(save(tmp_path, {CELL: [record(CELL, samples(10))], "y-default-fit": [record("y-default-fit", samples(5))]}))
    presence = {c.cell: c.presence for c in compare_runs(a, b).cells}
    assert presence == {CELL: "both", "x-default-fit": "only in A", "y-default-fit": "only in B"}


def test_no_cells_in_common_is_a_user_error(tmp_path):
    a, b = run_with(tmp_path, 10.0), run_with(tmp_path, 10.0, cell="multibranch-default-fit")
    with pytest.raises(UserError, match="no cells in common .*Compare runs of the same selection"):
        compare_runs(a, b)


def test_skipped_cells_are_not_compared(tmp_path):
    a = run_with(tmp_path, 10.0)
    b = load(save(tmp_path, {CELL: [{"cell": CELL, "status": "skipped", "reason": "no GPU", "config": {"workload": "reuters_cnn"}}]}))
    (c,) = compare_runs(a, b).cells
    assert c.verdict == "" and c.presence == "not comparable: skipped in B"


def test_machine_diff_names_what_differs_and_ignores_what_drifts():
    gpu = {"distbench": {**INFO["distbench"], "gpu_count": 1, "gpus": ["NVIDIA H100"], "tensorflow": "2.22.0",
                         "memory_bytes": INFO["distbench"]["memory_bytes"] + 5 * 2**20}}
    diff = {k: (a, b) for k, a, b in machine_diff(INFO, gpu)}
    assert diff == {"gpu_count": (0, 1), "gpus": ([], ["NVIDIA H100"]), "tensorflow": ("2.21.0", "2.22.0")}
    assert machine_diff(INFO, INFO) == []


def _processes(tmp_path, medians_ms, seed=0):
    """A run whose cell ran once per median (fresh processes), tight within each process."""
    reps = [record(CELL, samples(m, seed=seed + i, spread=0.02)) for i, m in enumerate(medians_ms)]
    return load(save(tmp_path, {CELL: reps}))


def test_processes_that_disagree_make_a_cell_too_noisy_and_the_check_lists_it(tmp_path):
    # Processes 10-20 ms on each side: the interval of B/A reaches far beyond ±25%.
    a, b = _processes(tmp_path, [10, 15, 20]), _processes(tmp_path, [11, 14, 19], seed=10)
    comparison = compare_runs(a, b)
    (c,) = comparison.cells
    assert c.verdict == TOO_NOISY and c.ratio_ci[1] > 1.25 and c.unchecked
    (noisy,) = too_noisy(comparison)
    line = noisy_line(noisy)
    assert line.startswith(f"{CELL}: B/A") and "reaches beyond x1.25 (3/3 processes)" in line
    assert regressions(comparison) == []   # not a failure either: listed, not passed


def test_processes_that_agree_support_a_same_verdict(tmp_path):
    a, b = _processes(tmp_path, [10, 10.2, 9.9]), _processes(tmp_path, [10.1, 10, 10.3], seed=10)
    (c,) = compare_runs(a, b).cells
    assert c.verdict == "same" and 1 / 1.25 < c.ratio_ci[0] and c.ratio_ci[1] < 1.25
    assert too_noisy(compare_runs(a, b)) == []


def test_a_cell_newly_flagged_by_the_accuracy_guard_fails_the_check(tmp_path):
    def flagged(status, seed):
        rec = record(CELL, samples(10.0, seed=seed))
        rec["accuracy_guard"] = {"status": status, "metric": "accuracy", "value": 0.2, "reference": {
            "mean": 0.42, "sd": 0.03, "low": 0.33, "high": 0.51, "values": [0.39, 0.42, 0.45]}}
        return load(save(tmp_path, {CELL: [rec]}))

    (reason,) = regressions(compare_runs(flagged("ok", 1), flagged("low", 2)))
    assert regression_line(reason) == (f"{CELL}: learns worse than its reference now (accuracy guard: accuracy "
                                       "0.200 vs reference 0.420 ± 0.030 (3 seeds; accepted 0.330-0.510))")
    assert regressions(compare_runs(flagged("low", 1), flagged("low", 2))) == []
