"""Verdicts on stored runs (the run is the unit, noise from history) and on interleaved pairs."""

import math

import pytest
from distbench.analysis import compare
from distbench.analysis.compare import (
    UNDECIDED,
    band_verdict,
    compare_runs,
    history_noise,
    judge_pairs,
    machine_diff,
)
from distbench.analysis.check import check, regressions
from distbench.core.errors import UserError
from distbench.render.verdicts import check_lines, regression_line
from distbench.storage.files import load

from tests.bench.runs import INFO, record, samples, save

CELL = "reuters_cnn-default-fit"


def run_with(tmp_path, median_ms, accuracy=0.5, seed=0, cell=CELL, info=INFO, spread=0.1):
    return load(save(tmp_path, {cell: [record(cell, samples(median_ms, seed=seed, spread=spread), accuracy)]}, info=info))


NOISE = {CELL: compare.Noise(sd=0.05, runs=10)}   # this machine's history: 5% between runs, 10 runs


def test_band_rule_by_hand():
    assert band_verdict((1.30, 1.60), 0.25) == "slower"        # wholly above 1.25
    assert band_verdict((0.60, 0.79), 0.25) == "faster"        # wholly below 1 / 1.25 = 0.8
    assert band_verdict((0.85, 1.20), 0.25) == "same"          # wholly inside the band
    assert band_verdict((1.10, 1.40), 0.25) == UNDECIDED       # straddles 1.25
    assert band_verdict(None, 0.25) == UNDECIDED


def test_paired_judgement_by_hand():
    # log-ratios 0.10, 0.20, 0.30: mean 0.2, sd 0.1, t(0.975, 2) = 4.3027 -> 0.2 ± 0.2484
    j = judge_pairs([0.1, 0.2, 0.3], threshold=0.1)
    assert j.ratio == pytest.approx(math.exp(0.2))
    assert j.interval == (pytest.approx(math.exp(0.2 - 0.24841), rel=1e-4), pytest.approx(math.exp(0.44841), rel=1e-4))
    assert j.verdict == UNDECIDED                                # the interval reaches below 1.1
    assert j.p_value == pytest.approx(0.25) and j.smallest_p == pytest.approx(0.25)   # all 3 positive: 2/8
    assert judge_pairs([0.30, 0.32, 0.31, 0.29], 0.1).verdict == "slower"
    assert judge_pairs([0.01, -0.01, 0.02, -0.02, 0.0], 0.1).verdict == "same"
    assert judge_pairs([0.05], 0.1).verdict == UNDECIDED            # one pair: no interval


def test_history_noise_is_robust_to_the_regression_it_judges(tmp_path):
    runs = [run_with(tmp_path, m, seed=i, spread=0.001) for i, m in enumerate([10.0, 10.5, 10.0, 16.0])]
    noise = history_noise(runs)[CELL]
    # |diffs| of log medians: 0.0488, 0.0488, 0.47 -> median 0.0488; x 1.4826 / sqrt 2 = 0.0511
    assert noise.runs == 4 and noise.sd == pytest.approx(1.4826 * math.log(1.05) / math.sqrt(2), rel=0.02)
    assert history_noise(runs[:2]) == {}                        # fewer than 3 runs: no estimate


def test_the_run_judged_is_left_out_of_the_noise_it_is_judged_against(tmp_path):
    """With 3 runs, the step judged was one of two differences behind its own noise: a 13.5x
    slow-down read B/A 13.5 [0.00, 59330], undecided, and an equal speed had a narrower
    interval than a step. Left out, the noise is the other runs' alone."""
    history = [run_with(tmp_path, m, seed=i, spread=0.001) for i, m in enumerate([10.0, 10.5, 10.2])]
    widths = []
    for later in (10.2, 137.7):   # the same speed, and 13.5x slower
        judged = run_with(tmp_path, later, seed=len(history), spread=0.001)
        runs = history + [judged]
        noise = history_noise(runs, leave_out=(judged,))
        # |diffs| of the three runs besides it: log(1.05), log(10.5 / 10.2) -> their median x 1.4826 / sqrt 2
        assert noise[CELL].runs == 3 and noise[CELL].sd == pytest.approx(
            1.4826 * (math.log(1.05) + math.log(10.5 / 10.2)) / 2 / math.sqrt(2), rel=0.02)
        (c,) = compare_runs(history[-1], judged, noise_a=noise, noise_b=noise).cells
        lo, hi = c.ratio_ci
        assert (lo < 1 < hi) if later == 10.2 else (c.verdict == "slower" and lo > 5), c
        widths.append(math.log(hi / lo))
        assert history_noise(runs[1:], leave_out=(judged,)) == {}    # 2 runs besides it: no estimate
    assert widths[0] == pytest.approx(widths[1], rel=0.01)         # the step does not widen its own interval


def test_runs_of_two_machines_read_the_same_in_either_order(tmp_path):
    """compare A B and compare B A across machines: only B was left out of its machine's
    noise, so A's own step stayed in A's and B's left B's; f0d42a/0101 against e3e5cf/0006
    read mirrored-train_on_batch 1.69 [1.35, 2.12] slower one way, 0.59 [0.25, 1.42]
    undecided the other. Both runs are now left out of both: the interval inverts."""
    from distbench.analysis.compare import comparison_noise
    from distbench.storage.files import Storage, load_history

    for machine, medians in (("old", [10.0, 10.4, 10.1, 10.3, 10.2, 14.0]), ("new", [20.0, 20.5, 19.8, 20.3, 8.0])):
        for i, m in enumerate(medians):
            save(tmp_path, {CELL: [record(CELL, samples(m, seed=i, spread=0.001))]}, machine=machine)
    old, _ = load_history(Storage(tmp_path).runs("old"))
    new, _ = load_history(Storage(tmp_path).runs("new"))
    a, b = old[-1], new[-1]   # each the odd one out of its machine's runs
    (ab,) = compare_runs(a, b, noise_a=comparison_noise(old, new, a, b)[0], noise_b=comparison_noise(old, new, a, b)[1]).cells
    (ba,) = compare_runs(b, a, noise_a=comparison_noise(new, old, b, a)[0], noise_b=comparison_noise(new, old, b, a)[1]).cells
    assert ab.ratio == pytest.approx(1 / ba.ratio)
    assert ab.ratio_ci[0] == pytest.approx(1 / ba.ratio_ci[1]) and ab.ratio_ci[1] == pytest.approx(1 / ba.ratio_ci[0])
    assert (ab.verdict, ba.verdict) == ("faster", "slower") and ab.noise_runs == ba.noise_runs


def test_runs_that_recorded_no_workload_code_stay_out_of_a_later_run_s_noise(tmp_path):
    """f0d42a's default-fit: runs 0001, 0012 and 0060 (22.7, 7.1, 14.1 ms) recorded no
    definition hash and were pooled with 0081-0101 (5.9-6.9 ms): half the differences were
    their level shifts, and two runs of one machine read B/A 0.94 [0.21, 4.19]."""
    def run(median, seed, code):
        r = record(CELL, samples(median, seed=seed, spread=0.001))
        if code:
            r["definition"] = {"workload": code, "loop": "l"}
        return load(save(tmp_path, {CELL: [r]}))

    history = [run(m, i, None) for i, m in enumerate([22.7, 7.1, 14.1])]
    history += [run(m, 10 + i, "w1") for i, m in enumerate([6.6, 6.5, 6.0, 6.5, 6.9])]
    (noise,) = history_noise(history, like=history[-1]).values()
    assert noise.runs == 5 and noise.sd < 0.1, noise   # the five runs of its code, not the three before
    assert history_noise(history, like=history[0])[CELL].runs == 8   # a run without a hash: as before


def test_runs_of_other_process_counts_stay_out_of_a_run_s_noise(tmp_path):
    """pytest's runs (one process a cell) and ``distbench run``'s (three) share a history; a
    median over three processes varies less than one process, so pytest runs judged against
    run's spread had too narrow an interval."""
    def run(medians, seed):
        return load(save(tmp_path, {CELL: [record(CELL, samples(m, seed=seed + k, spread=0.001))
                                           for k, m in enumerate(medians)]}))

    three = [run([m, m * 1.01, m * 0.99], 10 * i) for i, m in enumerate([10.0, 10.1, 9.9, 10.0])]
    one = [run([m], 100 + i) for i, m in enumerate([10.0, 12.5, 8.5, 11.0])]
    assert {r.results[CELL].processes for r in three} == {3} and one[0].results[CELL].processes == 1
    (noise,) = history_noise(three + one, like=one[-1]).values()
    assert noise.runs == 4 and noise.sd > 0.1, noise      # the one-process runs' spread, alone
    assert history_noise(three + one, like=three[0])[CELL].runs == 4


def test_runs_before_a_software_upgrade_and_copies_of_the_runs_compared_stay_out_of_the_noise(tmp_path):
    """A TensorFlow upgrade keeps the machine folder (its id is the hardware's): runs of the
    older version were pooled into the newer runs' noise, and one of them, 3x slower, took
    check's interval from [0.74, 1.12] to [0.02, 37.39] with no word, while check refuses to
    compare two such runs directly. And A given as a copy in another folder was counted
    again through its original in this one."""
    import copy

    older = copy.deepcopy(INFO)
    older["distbench"]["tensorflow"] = "2.20.0"
    mixed = [run_with(tmp_path, m, seed=i, spread=0.001, info=older if i == 2 else INFO)
             for i, m in enumerate([10.0, 10.3, 30.0, 10.1, 10.2, 10.0])]
    noise = history_noise(mixed, like=mixed[-1], leave_out=(mixed[-2], mixed[-1]))[CELL]
    assert noise.runs == 3 and noise.sd < 0.05, noise   # 10.0, 10.3 and 10.1: not the 30.0 of the older version
    assert history_noise(mixed, like=mixed[2], leave_out=(mixed[2],)) == {}   # the older version's own: one run
    elsewhere = load(save(tmp_path, {CELL: [record(CELL, samples(10.1, seed=3, spread=0.001))]}, machine="other"))
    assert elsewhere.measurements == mixed[3].measurements
    assert history_noise(mixed, like=mixed[-1], leave_out=(elsewhere, mixed[-1]))[CELL].runs == 3   # 0, 1 and 4


def test_the_interval_between_stored_runs_holds_its_95_percent():
    """Run-level log medians drawn at random (sd 0.1), a history of n of them, and A and B two
    more: the interval of B/A, from the history's robust spread, holds B/A's truth (1) 95% of
    the time. With Student's t at runs - 1 it held 92.6% to 93.8% at 6 to 20 runs."""
    import random

    rng = random.Random(5)
    for runs in (6, 10, 20):
        held, draws = 0, 4000
        for _ in range(draws):
            noise = compare.Noise(compare.robust_sd([rng.gauss(0, 0.1) for _ in range(runs)]), runs)
            lo, hi = compare.stored_interval(math.exp(rng.gauss(0, 0.1) - rng.gauss(0, 0.1)), noise, noise)
            held += lo <= 1 <= hi
        assert held / draws >= 0.94, (runs, held / draws)


def test_same_speed_with_a_quiet_history_is_same(tmp_path):
    a, b = run_with(tmp_path, 10.0, seed=1), run_with(tmp_path, 10.0, seed=2)
    (c,) = compare_runs(a, b, noise_a=NOISE, noise_b=NOISE).cells
    assert c.verdict == "same" and c.ratio == pytest.approx(1.0, abs=0.03) and c.noise_runs == 10
    assert check(compare_runs(a, b, noise_a=NOISE)).exit_status == compare.EXIT_PASS


def test_sixty_percent_slower_is_slower_and_fails_the_check(tmp_path):
    # 1.6 x exp(-t(0.975, noise_df(10) = 4.83) x 0.05 x sqrt 2) = 1.6 x 0.832 = 1.33 > 1.25
    a, b = run_with(tmp_path, 10.0, seed=1), run_with(tmp_path, 16.0, seed=2)
    comparison = compare_runs(a, b, noise_a=NOISE, noise_b=NOISE)
    (c,) = comparison.cells
    assert c.verdict == "slower" and c.ratio == pytest.approx(1.6, rel=0.05) and c.ratio_ci[0] > 1.25
    assert c.throughput_ratio == pytest.approx(1 / c.ratio)
    outcome = check(comparison)
    assert outcome.exit_status == compare.EXIT_REGRESSION
    assert regression_line(outcome.failures[0]).startswith(f"{CELL}: slower, median")


def test_twice_as_fast_is_faster(tmp_path):
    a, b = run_with(tmp_path, 10.0, seed=1), run_with(tmp_path, 5.0, seed=2)
    assert compare_runs(a, b, noise_a=NOISE).cells[0].verdict == "faster"


def test_without_history_a_verdict_is_undecided_and_the_check_fails_closed(tmp_path):
    a, b = run_with(tmp_path, 10.0, seed=1), run_with(tmp_path, 30.0, seed=2)   # even 3x: one run a side
    comparison = compare_runs(a, b)
    (c,) = comparison.cells
    assert c.verdict == UNDECIDED and c.ratio_ci is None
    assert check(comparison).exit_status == compare.EXIT_UNDECIDED
    assert check(comparison, allow_undecided=True).exit_status == compare.EXIT_UNDECIDED   # nothing checked
    assert not check(comparison).failures


def test_a_per_cell_threshold_overrides(tmp_path):
    # 1.4 x 0.834 = 1.17: inside the reach of 1.25 (undecided), beyond 1.1 (slower)
    a, b = run_with(tmp_path, 10.0, seed=1), run_with(tmp_path, 14.0, seed=2)
    assert compare_runs(a, b, 0.25, noise_a=NOISE).cells[0].verdict == UNDECIDED
    assert compare_runs(a, b, 0.25, {CELL: 0.1}, noise_a=NOISE).cells[0].verdict == "slower"


def test_loss_of_the_guard_metric_beyond_tolerance_fails_the_check(tmp_path):
    a, b = run_with(tmp_path, 10.0, accuracy=0.58, seed=1), run_with(tmp_path, 10.0, accuracy=0.41, seed=2)
    (c,) = compare_runs(a, b, noise_a=NOISE).cells
    assert c.accuracy_delta == pytest.approx(-0.17)
    (reason,) = regressions(compare_runs(a, b, noise_a=NOISE), accuracy_tolerance=0.05)
    assert "test accuracy 0.580 -> 0.410" in regression_line(reason)
    assert regressions(compare_runs(a, b, noise_a=NOISE), accuracy_tolerance=0.2) == []


def test_cells_in_one_run_only_are_listed_and_a_missing_one_fails_closed(tmp_path):
    skipped = {"cell": "z-one_gpu-fit", "status": "skipped", "reason": "no GPU found",
               "config": {"workload": "z", "strategy": "one_gpu", "loop": "fit"}}
    a = load(save(tmp_path, {CELL: [record(CELL, samples(10))], "x-default-fit": [record("x-default-fit", samples(5))],
                             "z-one_gpu-fit": [skipped]}))
    b = load(save(tmp_path, {CELL: [record(CELL, samples(10))], "y-default-fit": [record("y-default-fit", samples(5))]}))
    comparison = compare_runs(a, b, noise_a=NOISE)
    presence = {c.cell: c.presence for c in comparison.cells}
    # A cell A skipped was listed "only in A", as if A had measured it.
    assert presence == {CELL: "both", "x-default-fit": "only in A", "y-default-fit": "only in B",
                        "z-one_gpu-fit": "skipped (no GPU found) in A, not in B"}
    outcome = check(comparison)
    assert [c.cell for c in outcome.missing] == ["x-default-fit"]
    assert outcome.exit_status == compare.EXIT_UNDECIDED
    assert check(comparison, allow_missing=True).exit_status == compare.EXIT_PASS
    # A cell new in B has no baseline: not a failure, but its closing lines say it was not checked.
    from distbench.render.verdicts import check_lines
    lines = check_lines(outcome, "A", "B", 0.05)
    assert lines[lines.index("NOT CHECKED: 1 cell only in B, with nothing in A to check against (measure them "
                             "in a baseline to check them):") + 1] == "  y-default-fit"


def test_a_crashed_cell_fails_the_check(tmp_path):
    a = run_with(tmp_path, 10.0)
    crashed = {"cell": CELL, "status": "error", "reason": "timed out after 3 s", "config": {"workload": "reuters_cnn",
               "strategy": "default", "loop": "fit"}}
    b = load(save(tmp_path, {CELL: [crashed]}))
    comparison = compare_runs(a, b, noise_a=NOISE)
    (c,) = comparison.cells
    assert c.verdict == "" and c.presence == "not comparable: error (timed out after 3 s) in B"   # why, not only "error"
    outcome = check(comparison)
    assert outcome.exit_status == compare.EXIT_UNDECIDED and outcome.checked == 0 and outcome.failed == [c]


def test_allow_missing_passes_a_cell_b_lacks_or_a_crashed_never_one_b_crashed(tmp_path):
    """``--allow-missing`` is for a cell added or removed, or one the baseline could not run;
    a process of the checked run that crashed is never let through, with other cells decided."""
    from distbench.render.verdicts import check_lines

    crashed = {"cell": CELL, "status": "error", "reason": "timed out after 3 s", "config": {"workload": "reuters_cnn",
               "strategy": "default", "loop": "fit"}}
    other = "x-default-fit"

    def run(cell_records, seed):
        return load(save(tmp_path, {**cell_records, other: [record(other, samples(5, seed=seed))]}))

    whole = [record(CELL, samples(10, seed=k)) for k in range(3)]
    base, broken = run({CELL: whole}, 0), run({CELL: whole[:2] + [crashed]}, 1)
    noise = {**NOISE, other: NOISE[CELL]}
    outcome = check(compare_runs(base, broken, noise_a=noise), allow_missing=True)
    assert outcome.exit_status == compare.EXIT_UNDECIDED and outcome.checked == 1
    lines = check_lines(outcome, "A", "B", 0.05)
    assert f"FAILED: 1 cell crashed or cut short in B (no option lets this through):" in lines
    assert f"  {CELL}: 1 of 3 processes failed (timed out after 3 s) in B" in lines
    # The baseline's crash: the check cannot judge the cell, and --allow-missing lets it through.
    outcome = check(compare_runs(broken, run({CELL: whole}, 2), noise_a=noise), allow_missing=True)
    assert outcome.failed == [] and len(outcome.missing) == 1 and outcome.exit_status == compare.EXIT_PASS


def test_no_cells_in_common_is_a_user_error(tmp_path):
    a, b = run_with(tmp_path, 10.0), run_with(tmp_path, 10.0, cell="multibranch-default-fit")
    with pytest.raises(UserError, match="no cells in common .*Compare runs of the same selection"):
        compare_runs(a, b)


def test_an_interleaved_run_is_named_as_one_when_nothing_is_in_common(tmp_path):
    """``compare 13 14`` with 14 an ``ab`` run: its cells are pairs' sides, not the matrix's."""
    from datetime import datetime, timezone

    from distbench.storage.files import Storage, run_document

    from tests.bench.runs import MACHINE

    cells = {f"{CELL}@{side}": [record(CELL, samples(10.0, seed=k))] for k, side in enumerate("AB")}
    document = run_document(cells, INFO, {"id": "b", "dirty": False}, datetime(2026, 11, 23, tzinfo=timezone.utc),
                            extra={"interleaved": {"cells": {CELL: {"verdict": "same"}}}})
    paired = load(Storage(tmp_path).save(document, MACHINE))
    with pytest.raises(UserError, match=r"is an interleaved run \(`check --against` or `ab`, cells <id>@A and "
                                        r"<id>@B, judged when it ran\); compare compares runs of `distbench run`"):
        compare_runs(run_with(tmp_path, 10.0), paired)


def test_machine_diff_names_what_differs_and_ignores_what_drifts():
    gpu = {"distbench": {**INFO["distbench"], "gpu_count": 1, "gpus": ["NVIDIA H100"], "tensorflow": "2.22.0",
                         "memory_bytes": INFO["distbench"]["memory_bytes"] + 5 * 2**20}}
    diff = {k: (a, b) for k, a, b in machine_diff(INFO, gpu)}
    assert diff == {"gpu_count": (0, 1), "gpus": ([], ["NVIDIA H100"]), "tensorflow": ("2.21.0", "2.22.0")}
    assert machine_diff(INFO, INFO) == []


def test_a_cell_newly_flagged_by_the_accuracy_guard_fails_the_check(tmp_path):
    def flagged(status, seed):
        rec = record(CELL, samples(10.0, seed=seed))
        rec["accuracy_guard"] = {"status": status, "metric": "accuracy", "value": 0.2, "reference": {
            "mean": 0.42, "sd": 0.03, "low": 0.33, "high": 0.51, "values": [0.39, 0.42, 0.45]}}
        return load(save(tmp_path, {CELL: [rec]}))

    (reason,) = regressions(compare_runs(flagged("ok", 1), flagged("low", 2), noise_a=NOISE))
    assert regression_line(reason) == (f"{CELL}: learns worse than its reference now (accuracy guard: accuracy "
                                       "0.200 vs reference 0.420 (sd 0.030 over 3 seeds); accepted 0.330-0.510, the band ± 0.090)")
    assert regressions(compare_runs(flagged("low", 1), flagged("low", 2), noise_a=NOISE)) == []


def test_a_test_metric_gone_from_the_checked_run_is_a_loss_not_a_pass(tmp_path):
    """A process of B whose test metric is null (NaN when stored: a model that diverged)
    against a baseline that has one fails the check, named; one of B's three processes is
    enough (the mean over the other two would hide it)."""
    def run(values, seed):
        return load(save(tmp_path, {CELL: [record(CELL, samples(10.0, seed=seed + k), v) for k, v in enumerate(values)]}))

    base = run([0.5, 0.5, 0.5], 0)
    for values in ([None, None, None], [0.5, None, 0.5]):
        outcome = check(compare_runs(base, run(values, 10), noise_a=NOISE))
        (reason,) = outcome.failures
        assert outcome.exit_status == compare.EXIT_REGRESSION
        assert regression_line(reason) == (f"{CELL}: test accuracy 0.500 -> none: a process of B recorded no "
                                           "accuracy (NaN or infinite: its model diverged)")
    assert check(compare_runs(base, run([0.5, 0.5, 0.5], 20), noise_a=NOISE)).failures == []


def test_a_cell_an_interrupted_run_left_short_is_no_pass(tmp_path):
    """Ctrl-C after 1 of a cell's 6 planned processes: the cell is not judged on the one that
    ran (a run-level median of fewer processes than its history's), and the check fails
    closed on it as on a crashed process, naming the shortfall."""
    from datetime import datetime, timezone

    from distbench.render.verdicts import check_lines
    from distbench.storage.files import run_document
    from distbench.storage.files import Storage

    from tests.bench.runs import MACHINE

    base = run_with(tmp_path, 10.0)
    when = datetime(2026, 11, 23, tzinfo=timezone.utc)
    document = run_document({CELL: [record(CELL, samples(10.0, seed=1))]}, INFO, {"id": "b", "dirty": False}, when,
                            interrupted=True, plan={"repeats": {CELL: 6}, "guard_seeds": 0})
    short = load(Storage(tmp_path).save(document, MACHINE))
    (c,) = compare_runs(base, short, noise_a=NOISE).cells
    assert c.presence == "not comparable: 1 of 6 planned processes ran (the run was interrupted) in B"
    outcome = check(compare_runs(base, short, noise_a=NOISE))
    assert outcome.exit_status == compare.EXIT_UNDECIDED and outcome.failed == [c]
    assert f"  {CELL}: 1 of 6 planned processes ran (the run was interrupted) in B" in check_lines(outcome, "A", "B",
                                                                                                   0.05)
    # Against a baseline without the cell: one FAILED line naming the shortfall (it read
    # "ok: ", and the cell was listed again under NOT CHECKED).
    mm = "matmul-default"
    other = load(save(tmp_path, {mm: [record(mm, samples(10.0, seed=2))]}))
    document = run_document({CELL: [record(CELL, samples(10.0, seed=1))], mm: [record(mm, samples(10.0, seed=3))]},
                            INFO, {"id": "c", "dirty": False}, when, interrupted=True,
                            plan={"repeats": {CELL: 6, mm: 1}, "guard_seeds": 0})
    short = load(Storage(tmp_path).save(document, MACHINE))
    outcome = check(compare_runs(other, short, noise_a=NOISE))
    assert [c.cell for c in outcome.failed] == [CELL] and outcome.new == [] and outcome.exit_status != 0
    lines = check_lines(outcome, "A", "B", 0.05)
    assert f"  {CELL}: 1 of 6 planned processes ran (the run was interrupted) in the checked run" in lines, lines
    assert sum(CELL in line for line in lines) == 1, lines


def _with(tmp_path, median_ms, config=None, data=None, definition=None, seed=0):
    rec = record(CELL, samples(median_ms, seed=seed))
    rec["config"].update(config or {})
    rec["data"].update(data or {})
    if definition:
        rec["definition"] = definition
    return load(save(tmp_path, {CELL: [rec]}))


def test_cells_measured_differently_are_not_compared_and_the_check_says_what_differs(tmp_path):
    from distbench.render.verdicts import check_lines

    a = _with(tmp_path, 10.0, {"data": "synthetic", "epochs": 2}, {"sequence_length": 300},
              {"workload": "aaa", "loop": "l1"})
    b = _with(tmp_path, 10.0, {"data": "/x/reviews", "epochs": 10}, {"sequence_length": 200},
              {"workload": "bbb", "loop": "l1"}, seed=1)
    (c,) = compare_runs(a, b, noise_a=NOISE).cells
    assert c.verdict == "" and c.presence.startswith("not comparable: ")
    for part in ("epochs 2 -> 10", "data synthetic -> /x/reviews", "data sequence_length 300 -> 200",
                 "workload code aaa -> bbb"):
        assert part in c.presence
    outcome = check(compare_runs(a, b, noise_a=NOISE))
    assert outcome.exit_status == compare.EXIT_UNDECIDED and outcome.differing == [c]   # fails closed
    lines = check_lines(outcome, "A", "B", 0.05)
    assert any(line.startswith("NOT COMPARABLE: 1 cell measured differently") for line in lines)
    # Its only advice was --allow-missing, which decides nothing: a change of the model's code is check --against's
    assert "Stored runs of two versions of the model's code are two measurements; `distbench check --against REV` " \
           "measures both versions now, side by side, and judges the change." in lines, lines
    from distbench.render.summary import wrap_lines   # as check prints them: it was one line of 168 columns
    (note,) = [line for line in wrap_lines(lines) if line.startswith("Stored runs of two versions")]
    assert len(note) <= 120, note
    assert check(compare_runs(a, b, noise_a=NOISE), allow_missing=True).exit_status == compare.EXIT_UNDECIDED  # nothing checked
    # The same configuration and code: compared as before.
    same = _with(tmp_path, 10.0, {"data": "synthetic", "epochs": 2}, {"sequence_length": 300},
                 {"workload": "aaa", "loop": "l2"}, seed=2)
    assert compare_runs(a, same, noise_a=NOISE).cells[0].verdict == "same"


def test_the_workload_s_own_code_decides_where_both_runs_recorded_it(tmp_path):
    """``workload_code`` (the model's own code and helpers) rules over ``workload`` (its whole
    module): another model of the module edited compares, a helper the model calls edited
    does not; a run stored before ``workload_code`` is compared by module, as before."""
    base = _with(tmp_path, 10.0, definition={"workload": "mod1", "workload_code": "own1", "loop": "l"})
    other_model_edited = _with(tmp_path, 10.0, definition={"workload": "mod2", "workload_code": "own1", "loop": "l"},
                               seed=1)
    helper_edited = _with(tmp_path, 10.0, definition={"workload": "mod1", "workload_code": "own2", "loop": "l"}, seed=2)
    older = _with(tmp_path, 10.0, definition={"workload": "mod2", "loop": "l"}, seed=3)
    assert compare_runs(base, other_model_edited, noise_a=NOISE).cells[0].verdict == "same"
    (c,) = compare_runs(base, helper_edited, noise_a=NOISE).cells
    assert c.verdict == "" and "workload code own1 -> own2" in c.presence
    (c,) = compare_runs(base, older, noise_a=NOISE).cells
    assert c.verdict == "" and "workload code mod1 -> mod2" in c.presence


def test_another_model_by_its_flops_per_step_is_not_compared(tmp_path):
    """A model whose width its code does not name (read from a file): the code hash stays,
    the FLOPs of its step do not (31,090,224 at width 256 against 1,687,353,392 at 2,048, a
    user's project); within 1% they are one model (another TensorFlow's count)."""
    def run(flops, seed):
        rec = record(CELL, samples(10.0, seed=seed))
        rec["compute"] = {"flops_per_step": flops}
        return load(save(tmp_path, {CELL: [rec]}))

    a = run(31_090_224, 0)
    (c,) = compare_runs(a, run(1_687_353_392, 1), noise_a=NOISE).cells
    assert c.verdict == "" and "FLOPs per step 31,090,224 -> 1,687,353,392" in c.presence
    assert compare_runs(a, run(31_200_000, 2), noise_a=NOISE).cells[0].verdict == "same"


def test_a_data_folder_read_from_another_place_compares_when_its_data_agree(tmp_path):
    """check --against's side A reads the project's data folder from a temporary worktree,
    a new path each run: two runs of one revision stay comparable; other data do not."""
    worktree = _with(tmp_path, 10.0, {"data": "/tmp/distbench-90a0a27d-epqatjw3/data"}, {"train_examples": 400},
                     {"workload": "aaa"})
    again = _with(tmp_path, 10.0, {"data": "/tmp/distbench-90a0a27d-cuanh164/data"}, {"train_examples": 400},
                  {"workload": "aaa"}, seed=1)
    assert compare_runs(worktree, again, noise_a=NOISE).cells[0].verdict == "same"
    # Another folder, even with data of the same sizes, is another measurement.
    for k, other in enumerate(("/home/u/other", "/tmp/distbench-90a0a27d-xyz/other", "/tmp/distbench-1234abcd-q/data")):
        moved = _with(tmp_path, 10.0, {"data": other}, {"train_examples": 400}, {"workload": "aaa"}, seed=2 + k)
        (c,) = compare_runs(worktree, moved, noise_a=NOISE).cells
        assert c.presence == f"not comparable: data /tmp/distbench-90a0a27d-epqatjw3/data -> {other}"
    plain = _with(tmp_path, 10.0, {"data": "/home/u/data"}, {"train_examples": 400}, {"workload": "aaa"}, seed=9)
    (c,) = compare_runs(plain, moved, noise_a=NOISE).cells
    assert c.presence.startswith("not comparable: data /home/u/data -> ")


def test_the_examples_hash_decides_where_both_runs_recorded_it(tmp_path):
    """Runs that hashed their examples: the same examples from another folder (a moved
    project, another machine's home) compare; other examples from the same folder do not,
    named by their hashes. A run without the hash (dataset functions, older records) is
    compared by its folder's path, as before."""
    base = _with(tmp_path, 10.0, {"data": "/home/u/proj/data"}, {"fingerprint": "e1"}, {"workload": "aaa"})
    moved = _with(tmp_path, 10.0, {"data": "/builds/ci/proj/data"}, {"fingerprint": "e1"}, {"workload": "aaa"}, seed=1)
    edited = _with(tmp_path, 10.0, {"data": "/home/u/proj/data"}, {"fingerprint": "e2"}, {"workload": "aaa"}, seed=2)
    unhashed = _with(tmp_path, 10.0, {"data": "/builds/ci/proj/data"}, {"fingerprint": None}, {"workload": "aaa"},
                     seed=3)
    assert compare_runs(base, moved, noise_a=NOISE).cells[0].verdict == "same"
    (c,) = compare_runs(base, edited, noise_a=NOISE).cells
    assert c.presence == "not comparable: data examples e1 -> e2"
    (c,) = compare_runs(base, unhashed, noise_a=NOISE).cells
    assert c.presence == "not comparable: data /home/u/proj/data -> /builds/ci/proj/data"


def test_a_settings_file_read_otherwise_makes_another_measurement(tmp_path):
    """``definition["files"]``: a file both runs read, with other content, is named; one read
    by one run only (a cache the first run wrote) is no difference, nor are the files of a
    run that recorded none (stored before)."""
    def run(files, seed):
        return _with(tmp_path, 10.0, definition={"workload": "aaa", **({"files": files} if files is not None else {})},
                     seed=seed)

    base = run({"settings.json": "h1"}, 0)
    assert compare_runs(base, run({"settings.json": "h1"}, 1), noise_a=NOISE).cells[0].verdict == "same"
    (c,) = compare_runs(base, run({"settings.json": "h2", "vocab.txt": "v"}, 2), noise_a=NOISE).cells
    assert c.presence == "not comparable: file settings.json h1 -> h2"
    assert compare_runs(base, run({"settings.json": "h1", "cache.npy": "c"}, 3), noise_a=NOISE).cells[0].verdict == "same"
    assert compare_runs(base, run(None, 4), noise_a=NOISE).cells[0].verdict == "same"


def test_the_fingerprint_counts_usable_cpus_and_records_speed_variables(tmp_path):
    from distbench.storage import machine

    quota = tmp_path / "cpu.max"
    quota.write_text("50000 100000\n")         # a container limited to half a CPU
    assert machine.usable_cpus(str(quota)) == 1
    quota.write_text("150000 100000\n")        # 1.5 CPUs: two threads can run
    assert machine.usable_cpus(str(quota)) == min(2, machine.usable_cpus("/no/such/file"))
    quota.write_text("max 100000\n")
    assert machine.usable_cpus(str(quota)) == machine.usable_cpus("/no/such/file")
    env = machine.speed_env({"TF_ENABLE_ONEDNN_OPTS": "0", "HOME": "/root", "OMP_NUM_THREADS": "1"})
    assert env == {"TF_ENABLE_ONEDNN_OPTS": "0", "OMP_NUM_THREADS": "1"}
    a = {"cpu_model": "X", "cpu_count": 2, "env": {}}
    b = {"cpu_model": "X", "cpu_count": 2, "env": {"TF_ENABLE_ONEDNN_OPTS": "0"}}
    assert machine_diff(a, b) == [("env", {}, {"TF_ENABLE_ONEDNN_OPTS": "0"})]
    assert machine_diff({"cpu_model": "X"}, {"cpu_model": "X", "env": {}}) == []   # older runs recorded none


def _seeds(tmp_path, values: list[float], seed: int):
    """A run of the guard's reference cell and its seeds: test accuracy ``values[k]`` at seed k."""
    cells = {}
    for k, value in enumerate(values):
        cell = "reuters_cnn-default-fit" + (f"-init{k}" if k else "")
        rec = record(cell, samples(10.0, seed=seed + k), accuracy=value)
        if k:
            rec["config"]["init_seed"] = k
        cells[cell] = [rec]
    return load(save(tmp_path, cells))


def test_the_reference_is_judged_over_its_seeds_not_seed_by_seed(tmp_path):
    """One seed losing 2 of 36 test examples (0.917 -> 0.861) while the others gained failed
    the check; over the seeds the medians are equal."""
    noise = {c: compare.Noise(sd=0.05, runs=10) for c in ("reuters_cnn-default-fit", "reuters_cnn-default-fit-init1",
                                                          "reuters_cnn-default-fit-init2")}
    a, b = _seeds(tmp_path, [0.833, 0.917, 0.861], 1), _seeds(tmp_path, [0.861, 0.861, 0.972], 10)
    assert [r.kind for r in regressions(compare_runs(a, b, noise_a=noise))] == []
    # The table shows the plain cell's own 0.833 -> 0.861; the check's lines say what it judged.
    lines = check_lines(check(compare_runs(a, b, noise_a=noise)), "A", "B", 0.05)
    assert ("OVER SEEDS: the accuracy guard's reference is judged on the median over its training seeds (the table "
            "shows each seed's own): reuters_cnn-default-fit test accuracy 0.861 -> 0.861 over 3 seeds.") in lines
    worse = _seeds(tmp_path, [0.361, 0.361, 0.333], 20)   # a learning rate of 0: every seed at chance
    (reason,) = regressions(compare_runs(a, worse, noise_a=noise))
    assert regression_line(reason) == ("reuters_cnn-default-fit: test accuracy 0.861 -> 0.361, the median over its 3 "
                                       "training seeds (worse by 0.500, more than the tolerance 0.05)")


def test_a_run_of_a_training_seed_of_its_own_is_checked_for_accuracy(tmp_path):
    """``run --init-seed 7`` (or a run without the guard's seeds): its cells carry a seed and
    no plain cell stands beside them. Each is judged directly; they were taken for the
    guard's replicates, judged only through a reference cell that was not there, and a
    model trained to chance passed (exit 0)."""
    cell = f"{CELL}-init7"

    def seeded(accuracy, seed):
        rec = record(cell, samples(10.0, seed=seed), accuracy=accuracy)
        rec["config"]["init_seed"] = 7
        return load(save(tmp_path, {cell: [rec]}))

    comparison = compare_runs(seeded(0.58, 1), seeded(0.41, 2), noise_a={cell: NOISE[CELL]})
    (reason,) = regressions(comparison, accuracy_tolerance=0.05)
    assert reason.kind == "accuracy" and "test accuracy 0.580 -> 0.410" in regression_line(reason)
    assert check(comparison).exit_status == compare.EXIT_REGRESSION


def test_a_crash_of_the_checked_run_fails_closed_whatever_the_baseline_did(tmp_path):
    """A cell the baseline never ran, or skipped, that crashed in the checked run: not a pass
    (it was in no list, exit 0; or MISSING, let through by --allow-missing), as a crash of
    B's is not in an interleaved check."""
    def crashed(cell):
        return {"cell": cell, "status": "error", "reason": "worker pid 9 was killed by SIGKILL",
                "config": {"workload": cell.split("-")[0], "strategy": "default", "loop": "fit"}}

    new, skip = "x-default-fit", {"cell": "x-default-fit", "status": "skipped", "reason": "no GPU found",
                                  "config": {"workload": "x", "strategy": "default", "loop": "fit"}}
    whole = [record(CELL, samples(10, seed=1))]
    base = load(save(tmp_path, {CELL: whole}))
    only_b = check(compare_runs(base, load(save(tmp_path, {CELL: whole, new: [crashed(new)]})), noise_a=NOISE),
                   allow_missing=True)
    assert [c.cell for c in only_b.failed] == [new] and only_b.exit_status == compare.EXIT_UNDECIDED
    base = load(save(tmp_path, {CELL: whole, new: [skip]}))
    partly = [record(new, samples(5, seed=2)), crashed(new)]
    skipped_in_a = check(compare_runs(base, load(save(tmp_path, {CELL: whole, new: partly})), noise_a=NOISE),
                         allow_missing=True)
    assert [c.cell for c in skipped_in_a.failed] == [new] and skipped_in_a.exit_status == compare.EXIT_UNDECIDED
