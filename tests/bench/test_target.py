"""Time to target: the tracker, the loops that stop on it, censored seeds and their verdicts."""

import html
import math
import time

import pytest
from distbench.analysis import check, compare
from distbench.core import stats, targets
from distbench.core.errors import UserError
from distbench.render import target_table
from distbench.storage.files import load
from distbench.storage.results import CellResult
from distbench.trackers import target
from distbench.trackers.timing import StepClock

from tests.bench.runs import record, samples, save

CELL = "reuters_cnn-default-fit-to_accuracy_0.6"


def test_censored_median_ranks_a_run_that_never_finished_last():
    assert stats.censored_median([3.0, 1.0, 2.0]) == 2.0
    assert stats.censored_median([1.0, math.inf, 2.0]) == 2.0         # one of three never finished
    assert stats.censored_median([1.0, math.inf, math.inf]) == math.inf
    assert stats.censored_median([1.0, 2.0, 3.0, math.inf]) == 2.5
    assert stats.censored_median([1.0, 2.0, math.inf, math.inf]) == math.inf


def test_median_interval_from_order_statistics_by_hand():
    # n = 5: (min, max) covers the median with 1 - 2/32 = 93.75%; no narrower pair reaches 95%.
    assert stats.median_order_interval([5, 1, 4, 2, 3]) == (1, 5, pytest.approx(0.9375))
    # n = 9: (x2, x8) covers 1 - 2 x (1 + 9) / 512 = 96.1%; (x3, x7) only 82%.
    lo, hi, coverage = stats.median_order_interval(list(range(1, 10)))
    assert (lo, hi) == (2, 8) and coverage == pytest.approx(1 - 20 / 512)
    assert stats.median_order_interval([1.0, 2.0, math.inf, 3.0, 4.0])[1] == math.inf   # a censored upper bound


def test_parse_and_resolve_targets():
    from distbench import workloads

    assert targets.parse("accuracy=0.6") == targets.Target("accuracy", 0.6)
    assert targets.parse("accuracy=0.6").label == "to_accuracy_0.6"
    for bad in ("accuracy", "=0.6", "auc=high", "auc=nan"):
        with pytest.raises(UserError, match="give METRIC=VALUE"):
            targets.parse(bad)
    reuters, multibranch = workloads.get("reuters_cnn"), workloads.get("multibranch")
    assert targets.for_workload("default", reuters, "synthetic").text == reuters.default_targets["synthetic"]
    assert targets.for_workload("auc=0.9", multibranch, "synthetic") == targets.Target("auc", 0.9)
    with pytest.raises(UserError, match="'auc' is not one reuters_cnn scores; valid: accuracy, top5_accuracy"):
        targets.for_workload("auc=0.9", reuters, "synthetic")
    with pytest.raises(UserError, match="no default target for data 'folder:/x'"):
        targets.for_workload("default", reuters, "folder:/x")


def test_targets_know_which_way_is_better():
    # '=' reads as the metric's good direction: at least for accuracy (ids unchanged), at most for an error.
    assert targets.parse("accuracy>=0.6") == targets.Target("accuracy", 0.6, ">=")
    assert targets.parse("accuracy>=0.6").text == "accuracy=0.6"
    mae = targets.parse("mae<=40")
    assert (mae.op, mae.text, mae.label) == ("<=", "mae<=40", "to_mae_le_40")
    assert targets.parse("mae=40") == mae and targets.parse("loss=0.3").op == "<="
    assert targets.parse("val_mean_absolute_error=3").op == "<=" and targets.parse("auc=0.8").op == ">="
    assert mae.reached(39.9) and mae.reached(40) and not mae.reached(40.1)
    assert not targets.Target("accuracy", 0.6).reached(0.59)
    with pytest.raises(UserError, match="mae<=40"):
        targets.parse("mae<40")

    class Own:   # a workload that says its own metric is lower-is-better
        name, test_metrics, default_targets = "own", None, {"auto": "wer=0.2"}

        @staticmethod
        def direction(metric):
            return "lower" if metric == "wer" else "higher"

    assert targets.for_workload("default", Own(), "auto") == targets.Target("wer", 0.2, "<=")
    assert targets.for_workload("anything=3", Own(), "auto").op == ">="   # metrics checked by its run's preflight


def test_tracker_stops_when_an_error_falls_to_its_target():
    errors = [60.0 - k for k in range(20)]
    model, clock = _Model(errors), StepClock()
    model.evaluate = lambda: {"mae": errors[model.step - 1]}
    tracker = target.Tracker(targets.parse("mae<=52"), model.evaluate, eval_every=5, max_steps=20, clock=clock)
    _train(tracker, model, clock, 20)
    out = tracker.record()
    assert out["reached"] and out["steps"] == 10 and out["op"] == "<="   # 51 at step 10; 56 at step 5 is not


class _Model:
    """A fake training run: one metric value per step, evaluated on request."""

    def __init__(self, values, eval_delay=0.0):
        self.values, self.step, self.eval_delay, self.evaluated = values, 0, eval_delay, []

    def evaluate(self):
        time.sleep(self.eval_delay)
        self.evaluated.append(self.step)
        return {"accuracy": self.values[self.step - 1]}


def _train(tracker, model, clock, steps, step_s=0.0):
    for _ in range(steps):
        clock.start()
        time.sleep(step_s)
        clock.stop()
        model.step += 1
        if tracker(clock.total_steps):
            return


def test_tracker_stops_at_the_first_evaluation_that_reaches_the_target_and_excludes_evaluation_time():
    model, clock = _Model([0.1 * k for k in range(1, 21)], eval_delay=0.05), StepClock()
    tracker = target.Tracker(targets.Target("accuracy", 0.55), model.evaluate, eval_every=2, max_steps=20, clock=clock)
    _train(tracker, model, clock, 20, step_s=0.002)
    # 0.55 is first reached at step 6 (0.6); evaluations at 2, 4, 6 only: the loop stopped there.
    assert model.evaluated == [2, 4, 6] and model.step == 6
    out = tracker.record()
    assert out["reached"] and out["steps"] == 6 and out["evaluations"] == 3
    assert out["eval_s"] >= 3 * 0.05
    assert out["time_s"] < out["eval_s"]           # 6 steps of 2 ms, not the 150 ms of evaluating
    assert [p["step"] for p in out["curve"]] == [2, 4, 6] and out["curve"][-1]["value"] == pytest.approx(0.6)


def test_tracker_censors_a_run_that_never_reaches_the_target():
    model, clock = _Model([0.2] * 30), StepClock()
    tracker = target.Tracker(targets.Target("accuracy", 0.9), model.evaluate, eval_every=4, max_steps=10, clock=clock)
    _train(tracker, model, clock, 30)
    out = tracker.record()
    assert model.step == 10 and model.evaluated == [4, 8, 10]      # the budget's last step is evaluated too
    assert not out["reached"] and out["steps"] is None and out["time_s"] is None and out["steps_run"] == 10


@pytest.mark.parametrize("loop", ["fit", "train_on_batch", "custom"])
def test_every_loop_stops_when_the_target_is_reached(tiny, loop):
    from distbench.scenarios.tasks import run_cell

    # accuracy >= 0.001 holds at the first evaluation (46 classes): a loop that ignored it would run 40 steps.
    record_ = run_cell(tiny("reuters_cnn", "default", loop, target="accuracy=0.001", eval_every=8, max_steps=40,
                            steps_per_epoch=6, warmup_steps=1))
    assert record_["status"] == "ok", record_.get("reason")
    t = record_["target"]
    assert t["reached"] and t["steps"] == 8 and record_["steps"]["total"] == 8 and t["evaluations"] == 1
    assert record_["accuracy"]["test"]["accuracy"] == t["curve"][0]["value"]   # the last evaluation is the test


def test_a_first_evaluation_before_any_steady_step_is_refused_before_the_run(tiny):
    """A target reached there left a time to target and no step time: the cell failed after
    training (its worker's hint, "run more steps", cannot help a cell that stops at its target)."""
    from distbench.scenarios.tasks import run_cell

    with pytest.raises(UserError) as refused:
        tiny("reuters_cnn", "default", "custom", target="accuracy=0.001", eval_every=6, max_steps=40,
             steps_per_epoch=20, warmup_steps=5).validate()
    assert str(refused.value) == (
        "--eval-every 6 may find the target before any steady step (the cold start and 5 warm-up steps come first): "
        "give --eval-every 7 or more, or fewer --warmup-steps.")
    tiny("reuters_cnn", "default", "custom", target="accuracy=0.5", eval_every=7, max_steps=40, steps_per_epoch=20,
         warmup_steps=5).validate()
    with pytest.raises(UserError, match=r"\(the cold start and 15 warm-up steps come first, in units of 10 steps\): "
                                        r"give --eval-every 40 or more"):
        tiny("reuters_cnn", "default", "fit", target="accuracy=1", eval_every=30, max_steps=60, steps_per_epoch=40,
             steps_per_execution=10, warmup_steps=15).validate()
    with pytest.raises(UserError, match="^--eval-every 3 may find"):   # the worker checks its spec too
        run_cell(tiny("reuters_cnn", "default", "custom", target="accuracy=0.001", eval_every=3, max_steps=40,
                      steps_per_epoch=20, warmup_steps=5))
    # A budget that ends before one: fit's calls of 10 steps, the warm-up whole calls.
    with pytest.raises(UserError, match=r"^--max-steps 30 leaves no steady step \(the cold start and 15 warm-up steps "
                                        r"come first, in units of 10 steps\): give --max-steps 40 or more"):
        run_cell(tiny("reuters_cnn", "default", "fit", target="accuracy=1", eval_every=40, max_steps=30,
                      steps_per_epoch=40, steps_per_execution=10, warmup_steps=15))


@pytest.mark.slow
def test_fit_s_worker_refuses_a_first_evaluation_before_a_steady_call_the_parent_could_not_see(tmp_path):
    """fit on one virtual device runs calls of 10 (the parent cannot know every strategy's
    replicas, and checks one replica's strategies only): its worker refuses before training;
    a target reached at the first evaluation had failed the cell after it."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "distbench", "run", "--workload", "reuters_cnn", "--strategy", "virtual", "--devices", "1",
         "--loop", "fit", "--target", "accuracy=0.001", "--eval-every", "20", "--max-steps", "100", "--steps-per-epoch",
         "100", "--steps-per-execution", "10", "--data", "synthetic", "--guard-seeds", "0", "--repeats", "1",
         "--no-peak", "--no-save"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    said = " ".join(result.stdout.split())
    assert result.returncode == 1 and ("--eval-every 20 may find the target before any steady step (the cold start "
                                       "and 5 warm-up steps come first, in units of 10 steps): give --eval-every 30") \
        in said, result.stdout[-2000:] + result.stderr[-2000:]


def test_a_target_due_between_two_of_fit_s_calls_is_refused_not_evaluated_late():
    """fit calls back after whole calls: at every 25 steps in calls of 10 it evaluated at 30,
    50, 80, and its times to target read longer than the other loops' at 25, 50, 75. A
    cell whose epoch's length the parent could not check (the whole training set under
    tf-keras, whose epoch ends a call short) is refused at the first late evaluation."""
    model, clock = _Model([0.1] * 40), StepClock()
    tracker = target.Tracker(targets.Target("accuracy", 0.9), model.evaluate, eval_every=25, max_steps=100, clock=clock)
    with pytest.raises(UserError) as refused:
        for _ in range(3):
            clock.start()
            clock.stop(10)
            tracker(clock.total_steps)
    assert str(refused.value) == (
        "the target was due for evaluation at step 25, but the loop's calls of 10 steps first ended at step 30: its "
        "time to target would read longer than another loop's; give --eval-every, --max-steps and --steps-per-epoch "
        "as multiples of --steps-per-execution.")
    assert model.evaluated == []


def test_a_target_cell_runs_to_its_budget_when_not_reached(tiny):
    from distbench.scenarios.tasks import run_cell

    record_ = run_cell(tiny("reuters_cnn", "virtual", "custom", target="accuracy=1", eval_every=5, max_steps=14,
                            steps_per_epoch=6, warmup_steps=1))
    t = record_["target"]
    assert not t["reached"] and record_["steps"]["total"] == 14 and [p["step"] for p in t["curve"]] == [5, 10, 14]


def _target_record(time_s, steps=100, seed=0, reached=True):
    rec = record(CELL, samples(10.0, n=20, seed=seed))
    rec["config"].update({"target": "accuracy=0.6", "init_seed": seed, "max_steps": 400})
    rec["steps"]["cold_start_s"] = 0.4 + seed / 10   # the first step: tracing, inside the time to target
    rec["target"] = {"metric": "accuracy", "value": 0.6, "eval_every": 25, "max_steps": 400, "reached": reached,
                     "steps": steps if reached else None, "time_s": time_s if reached else None,
                     "eval_s": 1.0, "curve": []}
    return rec


def test_a_target_cell_reports_the_median_over_seeds_and_censors_the_rest():
    result = CellResult.of(CELL, [_target_record(10.0, 100, 0), _target_record(12.0, 125, 1),
                                  _target_record(0, seed=2, reached=False)])
    assert result.spec.is_target and result.reached == 2
    assert result.time_to_target == 12.0 and result.median_steps_to_target == 125
    assert result.time_to_target_interval[:2] == (10.0, math.inf)
    assert result.estimate == 12.0

    (row,) = target_table.target_rows({CELL: result})
    assert row[5] == "2 of 3" and row[6] == "12.0 s" and row[7].startswith("10.0 s to not reached")
    # In a terminal: under the workload's line, within 120 columns (it was 174 wide).
    lines = target_table.target_text({CELL: result}, "table", compact=True).splitlines()
    assert lines[0].split()[:3] == ["cell", "target", "reached"] and lines[2].startswith(f"{row[0]} (data: ")
    assert lines[3].startswith(f"{row[1]}-{row[2]} ") and "2 of 3" in lines[3] and max(map(len, lines)) <= 120
    assert row[11] == "0.5" and lines[3].split()[-1] == "0.5"   # the median seed's first step, apart
    # A seed whose process crashed is one of the seeds, said: "2 of 2" had read as all reached.
    crashed = {"cell": CELL, "status": "error", "reason": "worker pid 9 was killed by SIGKILL",
               "config": _target_record(0, seed=2)["config"]}
    (row,) = target_table.target_rows({CELL: CellResult.of(CELL, [_target_record(10.0, 100, 0),
                                                                  _target_record(12.0, 125, 1), crashed])})
    assert (row[4], row[5]) == (3, "2 of 3 (1 failed)"), row
    assert "2/3, 1 failed" in target_table.target_text({CELL: CellResult.of(CELL, [_target_record(10.0, 100, 0),
        _target_record(12.0, 125, 1), crashed])}, "table", compact=True)   # the terminal's, within 120 columns
    # Seeds, not processes: a seed whose other process measured is measured ("2 of 3 (1 failed)" had counted it).
    again = {**crashed, "config": _target_record(0, seed=1)["config"]}
    (row,) = target_table.target_rows({CELL: CellResult.of(CELL, [_target_record(10.0, 100, 0),
                                                                  _target_record(12.0, 125, 1), again])})
    assert (row[4], row[5]) == (2, "2 of 2"), row
    assert "the first step's tracing and compilation included" in target_table.target_note({CELL: result})


def test_a_seed_run_more_than_once_counts_once():
    """3 seeds x 3 processes (``--repeats 3``): the seeds' processes train the same curve and
    differ in step times only. It read "9 of 9" with 9 seeds' interval (coverage 96%)."""
    records = [_target_record(time_s, 100 + 25 * seed, seed) for seed, base in enumerate([10.0, 12.0, 14.0])
               for time_s in (base - 0.5, base, base + 1.5)]
    result = CellResult.of(CELL, records)
    assert result.times_to_target == [10.0, 12.0, 14.0] and result.steps_to_target == [100, 125, 150]
    assert result.reached == 3 and result.time_to_target == 12.0
    lo, hi, coverage = result.time_to_target_interval
    assert (lo, hi) == (10.0, 14.0) and coverage == 0.75
    (row,) = target_table.target_rows({CELL: result})
    assert row[4] == 3 and row[5] == "3 of 3"


def _run(tmp_path, times, reached=(True, True, True)):
    recs = [_target_record(t, seed=k, reached=r) for k, (t, r) in enumerate(zip(times, reached))]
    return load(save(tmp_path, {CELL: recs}))


def test_compare_judges_time_to_target_and_a_target_no_longer_reached_fails_the_check(tmp_path):
    noise = {CELL: compare.Noise(sd=0.05, runs=10)}
    a = _run(tmp_path, [10.0, 11.0, 12.0])
    same = compare.compare_runs(a, _run(tmp_path, [10.5, 11.0, 11.5]), noise_a=noise)
    assert same.cells[0].verdict == "same" and same.cells[0].target
    slower = compare.compare_runs(a, _run(tmp_path, [20.0, 22.0, 24.0]), noise_a=noise)
    assert slower.cells[0].verdict == "slower" and check.check(slower).exit_status == compare.EXIT_REGRESSION
    lost = compare.compare_runs(a, _run(tmp_path, [9.0, 0, 0], reached=(True, False, False)), noise_a=noise)
    assert lost.cells[0].verdict == "slower" and check.check(lost).exit_status == compare.EXIT_REGRESSION
    from distbench.render.verdicts import regression_line

    (failure,) = check.check(lost).failures
    assert "time to target 11.0 s -> not reached" in regression_line(failure)
    neither = compare.compare_runs(_run(tmp_path, [0, 0, 0], (False,) * 3), _run(tmp_path, [0, 0, 0], (False,) * 3),
                                   noise_a=noise)
    assert neither.cells[0].verdict == compare.UNDECIDED
    assert check.check(neither).exit_status == compare.EXIT_UNDECIDED


def test_a_side_that_reached_the_target_in_fewer_seeds_is_never_same(tmp_path):
    """A's 5 seeds all reach the target; B's median seed is as fast, but 2 of its 5 never get
    there: the median over seeds read "same", and ``check`` passed. Undecided now (exit 3),
    saying why; the same share of seeds on both sides is judged on the median as before."""
    from distbench.render.verdicts import check_lines

    noise = {CELL: compare.Noise(sd=0.05, runs=10)}
    a = _run(tmp_path, [10.0, 11.0, 12.0, 13.0, 14.0], (True,) * 5)
    fewer = compare.compare_runs(a, _run(tmp_path, [9.0, 10.0, 12.0, 0, 0], (True,) * 3 + (False,) * 2), noise_a=noise)
    (cell,) = fewer.cells
    assert cell.ratio == 1.0 and cell.verdict == compare.UNDECIDED and cell.fewer_reached
    assert cell.as_dict()["seeds_reached_b"] == [3, 5]
    outcome = check.check(fewer)
    assert outcome.exit_status == compare.EXIT_UNDECIDED
    said = " ".join(check_lines(outcome, "A", "B", 0.05))
    assert "B reached the target in 3 of 5 seeds, A in 5 of 5" in said, said
    even = compare.compare_runs(_run(tmp_path, [10.0, 11.0, 12.0, 0, 0], (True,) * 3 + (False,) * 2),
                                _run(tmp_path, [9.0, 10.0, 12.0, 0, 0], (True,) * 3 + (False,) * 2), noise_a=noise)
    assert even.cells[0].verdict == "same" and check.check(even).exit_status == compare.EXIT_PASS
    more = compare.compare_runs(_run(tmp_path, [9.0, 10.0, 12.0, 0, 0], (True,) * 3 + (False,) * 2), a, noise_a=noise)
    assert more.cells[0].verdict == "same"   # B reached it in more seeds: nothing hidden by its median


def test_the_report_has_a_time_to_target_table_and_chart(tmp_path):
    from distbench.render.report import write_report

    recs = [_target_record(t, seed=k) for k, t in enumerate([10.0, 11.0, 12.0])]
    for k, rec in enumerate(recs):
        rec["target"]["curve"] = [{"step": 25 * i, "train_s": 2.0 * i + k, "timed_s": 2.0 * i, "value": 0.15 * i}
                                  for i in range(1, 6)]
    run = load(save(tmp_path / "results", {CELL: recs}))
    markdown, page = write_report(run, {run.machine_id: [run]}, tmp_path / "report")
    text = markdown.read_text()
    assert "## Time to target" in text and "time to target" in page.read_text()
    row = next(line for line in text.splitlines() if "| accuracy=0.6 |" in line)
    assert [c.strip() for c in row.split("|")[1:8]] == ["reuters_cnn", "default", "fit", "accuracy=0.6", "3",
                                                        "3 of 3", "11.0 s"]
    assert "![Test metric against training time](time_to_target.png)" in text
    assert (tmp_path / "report" / "time_to_target.png").stat().st_size > 1000
    assert "## Accuracy against speed" not in text      # a target cell's final metric is its target
    # A history of such runs draws no trend: the page says why, not "No matrix cell has been stored".
    second = load(save(tmp_path / "results", {CELL: [_target_record(12.0, seed=k) for k in range(3)]}))
    markdown, page = write_report(second, {run.machine_id: [run, second]}, tmp_path / "report2")
    said = "These runs measured time to target only: a trend is drawn of a matrix cell's step time"
    assert said in markdown.read_text() and "No step was found" not in markdown.read_text()
    assert said in html.unescape(page.read_text()) and "No matrix cell has been stored" not in page.read_text()


def test_multi_worker_target_cells_skip_with_their_reason(tiny):
    from distbench.session.plan import skip_reason
    from distbench.strategies.hardware import Hardware

    spec = tiny("reuters_cnn", "multi_worker", "custom", target="accuracy=0.5")
    assert "time to target is not built for several workers" in skip_reason(spec, Hardware(2, (), None, (), False))


def test_the_terminal_table_names_a_workload_s_own_data_as_a_reader_knows_it():
    """``(data: workload)`` named no documented source: it is the workload's own data()."""
    from distbench.render.target_table import _data_words

    assert _data_words("workload") == "the workload's data()"
    assert _data_words("workload:/p/data.csv") == "the workload's data(), --data /p/data.csv"
    assert _data_words("synthetic") == "synthetic" and _data_words("folder:/x") == "folder:/x"
