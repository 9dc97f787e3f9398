"""The harness-overhead benchmark: the harness's cell against a bare loop in its own process."""

import textwrap
from types import SimpleNamespace

import pytest
from distbench.core import stats
from distbench.core.errors import UserError
from distbench.loops import fit as fit_loop
from distbench.render import overhead_lines, run_table
from distbench.scenarios import fit_cost
from distbench.session import overhead


def test_bootstrap_median_ci_brackets_the_median():
    lo, hi = stats.bootstrap_median_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert 1.0 <= lo <= 3.0 <= hi <= 5.0


def test_the_bare_loop_trains_the_workload_without_the_harness(tiny):
    from distbench.scenarios.bare import measure

    record = measure(tiny("reuters_cnn", "default", "custom", steps_per_epoch=10, warmup_steps=2))
    assert record["status"] == "ok" and record["bare"] == {"metrics": "workload"}
    assert len(record["steps"]["samples"]) == 7            # 10 - cold start - 2 warm-up
    assert record["step_time"]["median"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_the_bare_loop_runs_with_the_cell_s_threads_and_prefetch_in_its_worker(tiny, spawn, monkeypatch):
    """The overhead's two sides differ in the harness only: the bare loop's worker had the
    default thread pools and AUTOTUNE whatever the cell set (a 1-thread cell against a
    2-thread bare loop)."""
    from distbench.session.suite import Suite

    monkeypatch.setenv("DISTBENCH_SPAWN", spawn)
    spec = tiny("reuters_cnn", "default", "custom", steps_per_epoch=4, warmup_steps=1, intra_op_threads=1,
                inter_op_threads=1)
    record = Suite().run(spec, task="bare")
    assert record["status"] == "ok", record.get("reason")
    assert record["threads"] == {"intra_op": 1, "inter_op": 1}


def test_the_bare_loop_prefetches_as_the_cell_says(tiny, monkeypatch):
    from distbench.scenarios import bare

    asked = []
    monkeypatch.setattr(bare, "prefetched", lambda ds, how: asked.append(how) or ds)
    bare.measure(tiny("reuters_cnn", "default", "custom", steps_per_epoch=4, warmup_steps=1, prefetch="off"))
    assert asked == ["off"]


def test_fit_callback_cost_is_measured_in_pairs(tiny):
    record = fit_cost.measure(tiny("reuters_cnn", "default", "custom", steps_per_epoch=10, timing_cost_pairs=3))
    f = record["fit"]
    assert f["pairs"] == len(f["walls"]) == 3 and f["steps_per_call"] == fit_cost.FIT_STEPS
    assert all(t > 0 and u > 0 for t, u in f["walls"])
    assert f["ratio"] > 0 and len(f["ratio_ci"]) == 2   # found, with an interval (the verdict: the injected-delay test)


def test_overhead_refuses_other_cells(tiny):
    with pytest.raises(UserError, match="default strategy's custom loop.*received virtual/fit"):
        overhead.paired(None, tiny("reuters_cnn", "virtual", "fit"))


@pytest.mark.slow
def test_the_benchmark_finds_a_delay_injected_into_the_harness(tmp_path, tiny):
    """The harness side's workers sleep 30% of every timed step (a sitecustomize on their
    PYTHONPATH); the bare loop is untouched. The benchmark must report about +30%."""
    from distbench.session.suite import Suite

    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(textwrap.dedent("""
        import time
        from distbench.trackers import timing

        _stop = timing.StepClock.stop

        def stop(self, steps=1):
            time.sleep(0.3 * (self._timer() - self._start))
            _stop(self, steps)

        timing.StepClock.stop = stop
    """))
    spec = tiny("reuters_cnn", "default", "custom", steps_per_epoch=40)
    record = overhead.paired(Suite(), spec, fit_pairs=3, env={"PYTHONPATH": str(slow)})
    o = record["overhead"]
    assert record["status"] == "ok" and not o["within_target"], o
    assert o["ratio_ci"][0] > 1 + overhead.TARGET        # the added time is found, beyond the target
    assert overhead_lines.overhead_line(record).startswith("reuters_cnn-default-custom-overhead: the harness adds +")
    # fit's callback, in a worker of its own, over the pairs the parent asked for
    assert o["fit"]["pairs"] == len(o["fit"]["walls"]) == 3, o["fit"]
    assert "median of 3 pairs of 25-step fit calls" in " ".join(overhead_lines.overhead_lines(record))


def test_the_overhead_line_passes_only_what_the_interval_shows():
    def line(ratio, ci):
        record = {"cell": "w-default-custom-overhead", "status": "ok", "config": {}, "overhead": {
            "pairs": 6, "ratio": ratio, "ratio_ci": ci, "added": ratio - 1, "target": 0.03,
            "bare": [0.01] * 6, "harness": [0.01 * ratio] * 6}}
        return overhead_lines.overhead_line(record)

    assert "within the 3% target" in line(1.005, [0.98, 1.028])
    assert "not shown within the 3% target" in line(1.01, [0.97, 1.06])   # the point is within, the interval not
    assert "ABOVE the 3% target" in line(1.10, [1.05, 1.15])


@pytest.fixture
def slow_timer_fit():
    """``fit`` whose timing callback sleeps 30 ms at every step end (a known cost)."""
    import time

    from distbench.loops import LOOPS
    from distbench.loops.fit import FitLoop, timing_callback

    class SlowTimerFit(FitLoop):
        name = "fit_slow_timer"
        summary = "fit whose timing callback costs 30 ms a step"

        def timer(self, clock):
            callback = timing_callback(clock)
            stop = callback.on_train_batch_end

            def slow_stop(batch, logs=None):
                time.sleep(0.03)
                stop(batch, logs)

            callback.on_train_batch_end = slow_stop
            return callback

    LOOPS.register(SlowTimerFit)
    try:
        yield SlowTimerFit.name
    finally:
        LOOPS.unregister(SlowTimerFit.name)


@pytest.mark.parametrize("strategy", ["default", "virtual", "mirrored"])
def test_every_fit_cell_reports_what_its_timing_callback_costs(tiny, strategy):
    from distbench.loops.fit import COST_MAX_STEPS, COST_MIN_STEPS
    from distbench.scenarios.tasks import run_cell
    from distbench.storage.results import CellResult

    record = run_cell(tiny("reuters_cnn", strategy, "fit", timing_cost_pairs=3))
    cost = record["loop"]["timing_cost"]
    assert cost["pairs"] == len(cost["walls"]) == 3 and COST_MIN_STEPS <= cost["steps_per_call"] <= COST_MAX_STEPS
    assert cost["ratio_ci"][0] <= cost["ratio"] <= cost["ratio_ci"][1] and cost["coverage"] == 0.75
    assert "timing_cost_s" in record["phases"]
    note = run_table.timing_cost_note(CellResult.of(record["cell"], [record]).timing_cost)
    assert note.startswith("timing callback: fit ") and "wall time with it (3 pairs, 75% coverage); untimed fit " in note


def test_the_timing_cost_over_processes_says_its_interval_is_their_medians_range():
    """Two processes' medians [0.986, 1.071] read as the 95% interval beside one process's
    five pairs' 94% one (a user's trial): each says what it covers."""
    from distbench.render import run_table

    over = {"ratio": 1.028, "interval": (0.986, 1.071), "coverage": 0.5, "pairs": 10, "processes": 2,
            "untimed_step_s": 0.0107}
    assert run_table.timing_cost_note(over) == ("timing callback: fit +2.8% [-1.4%, +7.1%] wall time with it "
                                                "(2 processes' medians, 50% coverage); untimed fit 10.70 ms/step")


def test_a_costly_timing_callback_is_found(tiny, slow_timer_fit):
    from distbench.scenarios.tasks import run_cell

    cost = run_cell(tiny("reuters_cnn", "default", slow_timer_fit, timing_cost_pairs=3))["loop"]["timing_cost"]
    # 30 ms more at every step of the timed calls (steps here take 5-20 ms): found in every pair.
    assert cost["ratio_ci"][0] > 1.5, cost


def test_the_timing_cost_is_measured_for_fit_cells_that_measure_steps_only(tiny):
    from distbench.scenarios.tasks import run_cell

    def measured(**fields):
        return "timing_cost" in run_cell(tiny("reuters_cnn", **{"timing_cost_pairs": 2, **fields}))["loop"]

    assert not measured(loop="custom") and not measured(loop="train_on_batch")
    assert not measured(init_seed=1)                        # an accuracy-guard replicate
    assert not measured(timing_cost_pairs=0)
    spe = run_cell(tiny("reuters_cnn", steps_per_epoch=12, steps_per_execution=3, timing_cost_pairs=2))["loop"]["timing_cost"]
    assert spe["steps_per_call"] % 3 == 0                   # whole executions of 3 steps


class _Decided:
    """An interleaved engine's result for one cell: three equal pairs (the fit part is what is tested)."""

    def __init__(self, *args, **kwargs):
        pass

    def run(self, specs, skip_reason):
        pair = ({"step_time": {"median": 0.01}}, {"step_time": {"median": 0.01}})
        judgement = SimpleNamespace(pairs=3, ratio=1.0, interval=(0.99, 1.01), p_value=0.25, smallest_p=0.25)
        return [SimpleNamespace(failure=None, skipped="", judgement=judgement, log_ratios=[0.0] * 3, pairs=[pair] * 3)]


def test_the_fit_part_asks_its_worker_for_sixty_pairs_and_none_when_turned_off(tiny, monkeypatch):
    monkeypatch.setattr(overhead.interleave, "Interleaved", _Decided)
    asked = []

    class Suite:
        skip_reason = staticmethod(lambda spec: None)

        def run(self, spec, env=None, tree=None, task="cell"):
            asked.append((task, spec.timing_cost_pairs))
            return {"status": "ok", "fit": {"pairs": spec.timing_cost_pairs}}

    spec = tiny("reuters_cnn", "default", "custom", timing_cost_pairs=5)
    record = overhead.paired(Suite(), spec)
    assert asked == [("overhead", overhead.FIT_PAIRS)] and record["overhead"]["fit"] == {"pairs": 60}
    assert record["config"]["timing_cost_pairs"] == 5          # the cell's own setting, as run
    asked.clear()
    record = overhead.paired(Suite(), spec.replace(timing_cost_pairs=0))   # --timing-cost-pairs 0
    assert asked == [] and record["overhead"]["fit"] == {"not_measured": "--timing-cost-pairs 0"}
    assert overhead_lines.overhead_lines(record)[1] == "fit's timing callback: not measured (--timing-cost-pairs 0)"
    with pytest.raises(UserError, match="received -1"):
        overhead.paired(Suite(), spec, fit_pairs=-1)
    with pytest.raises(UserError, match="at least one pair of fit calls; received 0"):
        fit_cost.measure(spec.replace(timing_cost_pairs=0))


def test_every_worker_of_a_multi_worker_cell_runs_the_same_cost_steps():
    """Each fit call of the pairs runs about 0.3 s at the cell's own median step; across
    workers the medians differ, and the calls' collectives must pair up: a fixed count."""
    import tensorflow as tf

    fast, slow = [0.5] + [0.001] * 9, [0.5] + [0.004] * 9
    single = object.__new__(tf.distribute.MirroredStrategy)
    assert fit_loop.cost_steps(single, fast) == 300 and fit_loop.cost_steps(single, slow) == 75
    assert fit_loop.cost_steps(single, [0.5]) == fit_loop.COST_MIN_STEPS     # no steady step to go by
    across = object.__new__(tf.distribute.MultiWorkerMirroredStrategy)
    assert fit_loop.cost_steps(across, fast) == fit_loop.cost_steps(across, slow) == fit_loop.COST_MIN_STEPS


def test_the_bare_loop_averages_a_loss_given_by_name_with_labels_of_one_rank_less(tiny, monkeypatch):
    """A user's regression with ``loss() == "mse"``, labels (N,) and a Dense(1) output: the bare
    loop called the function bare and took its per-example values for one number ("only
    0-dimensional arrays can be converted to Python scalars"): every overhead pair failed."""
    import numpy as np
    from distbench import Workload, workloads
    from distbench.scenarios import bare

    class Mse(Workload):
        name = "mse"

        def build_model(self):
            import keras

            return keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(1)])

        def loss(self):
            return "mse"

        def metrics(self):
            import keras

            return [keras.metrics.MeanAbsoluteError(name="mae")]

        def data(self, source, seed):
            x = np.random.default_rng(seed).standard_normal((64, 5)).astype(np.float32)
            return (x, x[:, 0] * 2.0), (x, x[:, 0] * 2.0)   # labels (64,)

    monkeypatch.setattr(workloads, "get", lambda name: Mse())
    record = bare.measure(tiny("mse", "default", "custom", data="auto", global_batch=8, steps_per_epoch=6,
                               warmup_steps=1))
    assert record["status"] == "ok" and len(record["steps"]["samples"]) == 4, record
