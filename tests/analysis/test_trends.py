"""A cell's history: steps found, judged by compare's rule; other measurements cut the series."""

import datetime as dt
import math
import random

from distbench.analysis.trends import trends
from distbench.storage.files import Storage, load

from tests.bench.runs import record, samples, save

START = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.timezone.utc)


def history(tmp_path, levels: dict[str, list[float]], change=None):
    """Stored runs, one a day: cell -> its median per run (ms) with 5% between-run noise;
    ``change(cell, k, record)`` may edit a record."""
    rng = random.Random(3)
    root = tmp_path / "results"
    n = len(next(iter(levels.values())))
    for k in range(n):
        cells = {}
        for cell, medians in levels.items():
            rec = record(cell, samples(medians[k] * math.exp(rng.gauss(0, 0.05)), seed=k, spread=0.01))
            if change:
                change(cell, k, rec)
            cells[cell] = [rec]
        save(root, cells, commit=f"c{k:07d}", when=START + dt.timedelta(days=k))
    return [load(p) for p in Storage(root).runs()]


def test_a_doubling_is_a_step_and_a_regression_a_small_step_is_not_a_regression(tmp_path):
    runs = history(tmp_path, {"reuters_cnn-default-fit": [10.0] * 8 + [20.0] * 4,
                              "reuters_cnn-default-custom": [10.0] * 8 + [11.5] * 4,
                              "multibranch-default-fit": [10.0] * 12})
    found = {t.cell: t for t in trends(runs)}
    (step,) = found["reuters_cnn-default-fit"].steps
    assert (step.before.run, step.after.run, step.after.commit) == (8, 9, "c0000008")
    assert 1.8 < step.ratio < 2.2 and step.verdict == "slower" and step.regression
    assert not found["reuters_cnn-default-custom"].regressions   # 15%: inside compare's 25% band
    assert found["multibranch-default-fit"].steps == []
    assert [t.workload for t in found.values()] == ["reuters_cnn", "reuters_cnn", "multibranch"]
    assert len(found["multibranch-default-fit"].levels) == 12


def test_another_measurement_cuts_the_series_and_no_step_crosses_it(tmp_path):
    def keras_data_from_run_6(cell, k, rec):
        if k >= 6:
            rec["data"] = {"source": "keras:reuters"}

    runs = history(tmp_path, {"reuters_cnn-default-fit": [10.0] * 6 + [20.0] * 6}, keras_data_from_run_6)
    (trend,) = trends(runs)
    (cut,) = trend.breaks
    assert (cut.before.run, cut.after.run) == (6, 7) and "data source synthetic -> keras:reuters" in cut.why
    assert trend.steps == []


def test_replicates_ab_sides_and_crashed_processes(tmp_path):
    def as_replicate(cell, k, rec):
        if cell.endswith("init1"):
            rec["config"]["init_seed"] = 1

    runs = history(tmp_path, {"reuters_cnn-default-fit": [10.0] * 4, "reuters_cnn-default-fit-init1": [10.0] * 4},
                   as_replicate)
    assert [t.cell for t in trends(runs)] == ["reuters_cnn-default-fit"]
    root = tmp_path / "more"
    for k, median in enumerate([5.0, 5.1, 4.9, 5.0]):
        ok = record("matmul-default", samples(median, seed=k))
        repeats = [ok, {**ok, "status": "error", "reason": "killed"}] if k == 2 else [ok]   # run 3: one crashed
        save(root, {"matmul-default": repeats, "reuters_cnn-default-fit@A": [record("reuters_cnn-default-fit",
                                                                                   samples(5.0))]})
    (trend,) = trends([load(p) for p in Storage(root).runs()])
    assert trend.cell == "matmul-default" and [p.whole for p in trend.points] == [True, True, False, True]
    assert sorted(trend.levels) == [0, 1, 3] and trend.steps == []   # shown, never fitted or judged (indices)


def test_a_stretch_is_judged_with_its_own_runs_noise_not_an_older_code_s(tmp_path, capsys):
    """Ten quiet runs of the old workload code (5% apart), then eight of the new, which
    swing by a third from run to run (a busy machine) and jump 2.2x at run 15: the report
    called that jump a regression, B/A [1.60, 3.13], with noise taken mostly from the old
    code's runs, where `distbench compare 14 15` (its noise from the new code's runs) says
    undecided."""
    from distbench.cli.main import main

    def new_code_from_run_11(cell, k, rec):
        rec["definition"] = {"workload": "bbb" if k >= 10 else "aaa", "loop": "l"}

    runs = history(tmp_path, {"reuters_cnn-default-fit": [10.0] * 10 + [10, 13, 8, 12, 26, 33, 21, 29]},
                   new_code_from_run_11)
    (trend,) = trends(runs)
    (cut,) = trend.breaks
    assert (cut.before.run, cut.after.run) == (10, 11)
    assert trend.noise.runs == 8 and trend.noise.sd > 0.3           # the new code's runs only
    (step,) = trend.steps
    assert (step.before.run, step.after.run, step.verdict) == (14, 15, "undecided") and not trend.regressions
    assert main(["compare", "14", "15", "--results", str(tmp_path / "results")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("default-fit "))
    assert row.split()[-1] == "undecided", row


def test_a_run_over_another_number_of_processes_leaves_the_stretch_fitted_and_its_step_found(tmp_path):
    """A --repeats 1 run after runs of 3 processes has too few runs like it for a noise of its
    own: the whole history had read "not fitted", its regression (x2 at run 5) unreported."""
    cell, root, rng = "reuters_cnn-default-fit", tmp_path / "results", random.Random(5)
    for k, level in enumerate([10.0] * 4 + [20.0] * 4):
        reps = [record(cell, samples(level * math.exp(rng.gauss(0, 0.03)), seed=10 * k + j, spread=0.01))
                for j in range(3 if k < 7 else 1)]   # three processes, as run's default; the last run one
        save(root, {cell: reps}, commit=f"c{k:07d}", when=START + dt.timedelta(days=k))
    runs = [load(p) for p in Storage(root).runs()]
    assert runs[-1].results[cell].processes == 1 and runs[0].results[cell].processes == 3
    (trend,) = trends(runs)
    assert len(trend.levels) == 8 and trend.noise is not None
    (step,) = trend.regressions
    assert (step.before.run, step.after.run) == (4, 5)


def test_two_runs_that_share_a_number_are_two_points(tmp_path):
    """A machine folder merged from two clones holds two runs numbered 0009: the fitted levels
    and the noise were keyed by number, so one run stood for both (a point left unfitted)."""
    runs = history(tmp_path, {"reuters_cnn-default-fit": [10.0] * 8 + [20.0] * 4})
    tenth = runs[9].path
    tenth.rename(tenth.with_name("0009" + tenth.name[4:].replace("c0000009", "c0000099")))
    runs = [load(p) for p in Storage(tmp_path / "results").runs()]
    assert [r.number for r in runs].count(9) == 2
    (trend,) = trends(runs)
    assert len(trend.points) == 12 and len(trend.levels) == 12, trend.levels
    (step,) = trend.steps
    assert (step.before.run, step.after.run) == (8, 9) and step.verdict == "slower"
