"""Interleaved A/B: pairs in alternating order, verdicts on pairs, fail closed; real processes."""

import json
import math
import os
import random
import textwrap
from dataclasses import replace
from types import SimpleNamespace

import pytest
from distbench.analysis import compare, pairs, tolerance
from distbench.session import paired_run
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.render import side_lines, units, verdicts
from distbench.session import bisect
from distbench.session import interleave as ab
from distbench.session import options
from distbench.session.side import parse_side, with_inherited
from distbench.storage.files import load, save_run

from tests.bench.runs import record, samples

SPEC = CellSpec("reuters_cnn", "default", "custom")


class FakeLaunch:
    """Processes whose median is ``medians[side]`` times a drift shared by both sides of a
    pair, times the process's own noise (sd ``process_sd``); records the order."""

    def __init__(self, medians, process_sd=0.03, drift_sd=0.3, crash=None, seed=0, accuracy=None):
        self.medians, self.process_sd, self.drift_sd, self.crash = medians, process_sd, drift_sd, crash
        self.accuracy = accuracy or {"A": 0.5, "B": 0.5}
        self.rng, self.order, self._drift = random.Random(seed), [], 1.0

    def __call__(self, spec, side):
        if len(self.order) % 2 == 0:   # a new pair: the machine drifts (25-40% here)
            self._drift = self.rng.lognormvariate(0, self.drift_sd)
        self.order.append(side.name)
        if self.crash == len(self.order):
            return {"cell": spec.id, "status": "error", "reason": "worker pid 1 was killed by SIGKILL",
                    "config": spec.to_dict()}
        median = self.medians[side.name] * self._drift * self.rng.lognormvariate(0, self.process_sd)
        rec = record(spec.id, samples(median, n=50, spread=0.02, seed=len(self.order)), self.accuracy[side.name])
        rec["config"] = spec.to_dict()
        return rec


def _run(launch, **kw):
    # lockstep off: these fakes are not processes; the turn-taking is tested on its own below
    engine = ab.Interleaved(ab.Side("A", "a"), ab.Side("B", "b"), launch, **{"threshold": 0.1, "lockstep": False, **kw})
    return engine.run([SPEC], lambda spec: None)[0]


def test_pairs_alternate_a_b_b_a_and_cancel_the_machine_s_drift():
    launch = FakeLaunch({"A": 10.0, "B": 10.0})
    cell = _run(launch, min_pairs=3, max_pairs=8)
    assert launch.order[:8] == ["A", "B", "B", "A", "A", "B", "B", "A"]
    # 30% drift between pairs, 3% per process: the pairs' log-ratios see only the 3% (sd 4.2%).
    assert cell.verdict == "same", cell.as_dict()


def test_a_slowed_side_is_slower_and_stops_early():
    cell = _run(FakeLaunch({"A": 10.0, "B": 15.0}), min_pairs=3, max_pairs=8)
    assert cell.verdict == "slower" and len(cell.pairs) == 3
    lo, hi = cell.judgement.interval
    assert lo < 1.5 < hi
    assert pairs.outcome([cell]).exit_status == compare.EXIT_REGRESSION


def test_what_the_budget_cannot_decide_is_undecided_and_fails_closed():
    cell = _run(FakeLaunch({"A": 10.0, "B": 11.0}, process_sd=0.08), min_pairs=3, max_pairs=3)
    assert cell.verdict == "undecided"
    assert pairs.outcome([cell]).exit_status == compare.EXIT_UNDECIDED
    assert pairs.outcome([cell], allow_undecided=True).exit_status == compare.EXIT_UNDECIDED   # nothing decided


def test_a_budget_spent_before_min_pairs_decides_nothing(monkeypatch):
    """--budget ran out after two pairs of identical sides, below --min-pairs 4: two close
    log-ratios read "same" and the check passed (exit 0) on fewer pairs than asked for; and
    B's lower test metric over those two seeds read "less accurate"."""
    clock = [0.0]
    fake = FakeLaunch({"A": 10.0, "B": 10.0}, process_sd=0.005, accuracy={"A": 0.5, "B": 0.3})

    def launch(spec, side):   # each process takes a second of the budget's clock
        clock[0] += 1.0
        return fake(spec, side)

    monkeypatch.setattr(ab.time, "monotonic", lambda: clock[0])
    cell = _run(launch, min_pairs=4, max_pairs=8, budget_s=3.5)
    assert len(cell.pairs) == 2 and cell.stopped == "time budget of 3.5 s spent after 2 pairs"
    assert cell.judgement.verdict == "same"   # what the two pairs alone say
    assert cell.verdict == "undecided"
    assert not cell.whole
    assert not cell.less_accurate(0.05)   # two seeds' medians name no commit (bisect did, exit 0)
    assert pairs.outcome([cell]).exit_status == compare.EXIT_UNDECIDED


def test_a_crashed_process_fails_the_cell_at_once():
    cell = _run(FakeLaunch({"A": 10.0, "B": 10.0}, crash=4), min_pairs=3, max_pairs=8)
    assert cell.verdict == "failed" and len(cell.pairs) == 2
    assert pairs.outcome([cell]).exit_status == compare.EXIT_UNDECIDED
    assert pairs.outcome([cell], allow_missing=True).exit_status == compare.EXIT_UNDECIDED   # nothing decided


def test_allow_missing_passes_a_cell_whose_side_a_crashed_never_one_whose_side_b_did():
    """Beside a decided cell: the base's process failing (its model cannot be built any more)
    may be let through, listed; a crash of side B, the change under test, never."""
    same = _run(FakeLaunch({"A": 10.0, "B": 10.0}), min_pairs=3, max_pairs=8)
    crashed = {side: next(cell for cell in (_run(FakeLaunch({"A": 10.0, "B": 10.0}, crash=n), min_pairs=3, max_pairs=8)
                                            for n in range(1, 7)) if cell.failed_sides == {side})
               for side in "AB"}
    assert pairs.outcome([same, crashed["A"]], allow_missing=True).exit_status == compare.EXIT_PASS
    assert pairs.outcome([same, crashed["A"]]).exit_status == compare.EXIT_UNDECIDED
    outcome = pairs.outcome([same, crashed["B"]], allow_missing=True)
    assert outcome.exit_status == compare.EXIT_UNDECIDED
    a, b = ab.Side("A", "", {}), ab.Side("B", "", {})
    assert (f"--allow-missing does not pass a process of B that crashed: {crashed['B'].cell}"
            in verdicts.paired_lines(a, b, outcome))


def test_a_cell_this_machine_cannot_run_is_skipped_not_passed():
    engine = ab.Interleaved(ab.Side("A", "a"), ab.Side("B", "b"), FakeLaunch({"A": 1, "B": 1}))
    (cell,) = engine.run([SPEC], lambda spec: "one_gpu: no GPU found")
    assert cell.verdict == "skipped" and not cell.pairs
    assert pairs.outcome([cell]).exit_status == compare.EXIT_UNDECIDED


def test_both_sides_are_stored_as_one_run(tmp_path):
    cell = _run(FakeLaunch({"A": 10.0, "B": 15.0}), min_pairs=3, max_pairs=3)
    a, b = ab.Side("A", "revision HEAD~1"), ab.Side("B", "this working tree")
    path = save_run(paired_run.records_by_side([cell]), tmp_path, extra={"interleaved": paired_run.stored_document_part(a, b, [cell], {})})
    run = load(path)
    assert set(run.results) == {f"{SPEC.id}@A", f"{SPEC.id}@B"}
    from distbench.render.run_table import row

    assert [row(r)[3] for r in run.results.values()] == ["custom@A", "custom@B"]   # the table names the side
    assert run.results[f"{SPEC.id}@B"].processes == 3
    stored = run.interleaved["cells"][SPEC.id]
    assert stored["verdict"] == "slower" and stored["pairs"] == 3 and run.interleaved["a"]["label"] == "revision HEAD~1"


def test_side_words_set_options_and_environment():
    side = parse_side("B", '--intra-op-threads 1 TF_ENABLE_ONEDNN_OPTS=0', options.spec_changes)
    assert side.changes == {"intra_op_threads": 1} and side.env == {"TF_ENABLE_ONEDNN_OPTS": "0"}


def test_a_lower_case_variable_is_the_environment_and_an_option_s_value_with_equals_is_not(tmp_path, monkeypatch):
    """``http_proxy=x`` is a variable (it was refused as an unknown option); ``--data a=b``'s
    value stays the option's, and ``x.y=1`` is named as no variable name."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a=b").mkdir()
    side = parse_side("B", "http_proxy=http://p:3128 --prefetch=auto OMP_NUM_THREADS=1 --data a=b",
                      options.spec_changes)
    assert side.env == {"http_proxy": "http://p:3128", "OMP_NUM_THREADS": "1"}
    assert side.changes["prefetch"] == "auto" and side.changes["data"] == str(tmp_path / "a=b")
    with pytest.raises(UserError, match="'x.y' is not an environment variable name"):
        parse_side("B", "x.y=1", options.spec_changes)
    with pytest.raises(UserError, match=r"^Side B \(X=0 X=1\): X is set twice; give each variable once.$"):
        parse_side("B", "X=0 X=1", options.spec_changes)   # the last had won, as a repeated option is refused


@pytest.mark.slow
def test_real_processes_of_one_configuration_are_found_the_same(tiny):
    """A/A in real worker processes, in lockstep: the verdict is same, never slower or faster."""
    from distbench.session.suite import Suite

    suite = Suite()
    engine = ab.Interleaved(ab.Side("A", "as is"), ab.Side("B", "as is"), lambda spec, side: suite.run(spec, side.env),
                            threshold=0.1, min_pairs=3, max_pairs=4)
    (cell,) = engine.run([tiny("reuters_cnn", "default", "custom", steps_per_epoch=40)], suite.skip_reason)
    # Never a false alarm. On a quiet machine the verdict is "same" within 3-4 pairs; a pair
    # disturbed by other work on these 2 cores (it happened in CI here: one pair at -16%)
    # widens the interval to "undecided", which is the method failing closed, not a flake.
    # That the method does decide is the next test's (an injected slow-down found slower).
    # (Not "1 inside the interval": a 95% interval leaves 1 out in one A/A run of twenty.)
    # Four pairs at most: a false alarm can come at any look, and CI's time goes on the pairs
    # of a disturbed run, which stays undecided however many it has.
    assert cell.verdict in ("same", "undecided"), cell.as_dict()


@pytest.mark.slow
def test_real_processes_find_an_injected_slow_down(tmp_path, tiny):
    """Side B's workers sleep half of every timed step inside the timed region (a
    sitecustomize on their PYTHONPATH): a 1.5x slow-down, in real worker processes."""
    from distbench.session.suite import Suite

    slow, plain = tmp_path / "slow", tmp_path / "plain"
    slow.mkdir(), plain.mkdir()
    (slow / "sitecustomize.py").write_text(textwrap.dedent("""
        import time
        from distbench.trackers import timing

        _stop = timing.StepClock.stop

        def stop(self, steps=1):
            time.sleep(0.5 * (self._timer() - self._start))   # the step takes 1.5x as long
            _stop(self, steps)

        timing.StepClock.stop = stop
    """))
    suite = Suite()
    a = ab.Side("A", "plain", env={"PYTHONPATH": str(plain)})
    b = ab.Side("B", "slowed 1.5x", env={"PYTHONPATH": str(slow)})
    engine = ab.Interleaved(a, b, ab.through(suite), threshold=0.1,
                            min_pairs=3, max_pairs=6)
    (cell,) = engine.run([tiny("reuters_cnn", "default", "custom", steps_per_epoch=40)], suite.skip_reason)
    assert cell.verdict == "slower", cell.as_dict()
    # The estimate finds the injected effect. (Not "1.5 inside the 95% interval": that
    # fails one run in twenty by construction, and failed here once.)
    assert 1.35 < cell.judgement.ratio < 1.65 and cell.judgement.interval[0] > 1.1


def test_pair_noise_is_pooled_around_each_run_s_mean(tmp_path):
    # Run 1: log-ratios 0.1, 0.3 (mean 0.2); run 2: 0.0, 0.1, -0.1 (mean 0). Squares: 0.01, 0.01 and
    # 0, 0.01, 0.01; degrees of freedom 1 + 2 = 3: sd = sqrt(0.04 / 3) = 0.1155.
    runs = []
    for ratios in ([0.1, 0.3], [0.0, 0.1, -0.1]):
        part = {"cells": {SPEC.id: {"log_ratios": ratios}}}
        runs.append(load(save_run({SPEC.id + "@A": [record(SPEC.id, samples(10))]}, tmp_path,
                                  extra={"interleaved": part})))
    noise = pairs.pair_noise(runs)[SPEC.id]
    assert noise.sd == pytest.approx((0.04 / 3) ** 0.5) and noise.pairs == 5 and noise.runs == 2
    # A run of pairs one after the other (--no-lockstep): its own noise, not pooled with lockstep's.
    part = {"cells": {SPEC.id: {"log_ratios": [0.5, -0.5, 0.0], "lockstep": False}}}
    runs.append(load(save_run({SPEC.id + "@A": [record(SPEC.id, samples(10))]}, tmp_path, extra={"interleaved": part})))
    assert pairs.pair_noise(runs)[SPEC.id] == noise
    apart = pairs.pair_noise(runs, lockstep=False)[SPEC.id]
    assert apart.sd == pytest.approx(0.5) and apart.runs == 1 and not apart.lockstep
    # A check that found B 21.8x slower (log 3.08), its pairs spread 0.42: not a small change's
    # noise, which plan sizes its pairs by (it made plan ask for six times the pairs).
    part = {"cells": {SPEC.id: {"log_ratios": [3.08 + d for d in (0.42, -0.42, 0.0)]}}}
    runs.append(load(save_run({SPEC.id + "@A": [record(SPEC.id, samples(10))]}, tmp_path, extra={"interleaved": part})))
    assert pairs.pair_noise(runs)[SPEC.id] == noise
    # tune's confirmation: plain fit against the winner (another loop, XLA), stored under plain
    # fit's id: its spread (0.336 for a user) is not fit's own, and had stood for it.
    part = {"cells": {SPEC.id: {"log_ratios": [0.3, -0.3, 0.1]}}, "tune": True}
    runs.append(load(save_run({SPEC.id + "@A": [record(SPEC.id, samples(10))]}, tmp_path, extra={"interleaved": part})))
    assert pairs.pair_noise(runs)[SPEC.id] == noise
    # An ab of --global-batch 32 against 256 (or of other step counts): its sides ran other work, and
    # plan pooled their pairs as the cell's noise (a user's sd 0.154, 13 pairs planned).
    sides = {f"{SPEC.id}@{s}": [{**record(SPEC.id, samples(10)), "config": {**SPEC.to_dict(), "global_batch": batch}}]
             for s, batch in (("A", 32), ("B", 256))}
    part = {"cells": {SPEC.id: {"log_ratios": [0.4, -0.4, 0.0]}}}
    runs.append(load(save_run(sides, tmp_path, extra={"interleaved": part})))
    assert pairs.pair_noise(runs)[SPEC.id] == noise
    sides[f"{SPEC.id}@B"][0]["config"]["global_batch"] = 32   # the same work: its pairs count
    runs.append(load(save_run(sides, tmp_path, extra={"interleaved": part})))
    assert pairs.pair_noise(runs)[SPEC.id].runs == 3
    # Weak against strong scaling under one replica (default): the same steps, as the interleaving
    # itself reads them (one rule now, pairs.other_work); the stored noise had left them out.
    sides[f"{SPEC.id}@B"][0]["config"]["scaling"] = "weak"
    runs.append(load(save_run(sides, tmp_path, extra={"interleaved": part})))
    assert pairs.pair_noise(runs)[SPEC.id].runs == 4
    assert pairs.other_work(SPEC, SPEC.replace(scaling="weak")) == ""
    assert pairs.other_work(SPEC.replace(strategy="virtual"), SPEC.replace(strategy="virtual", scaling="weak")) == \
        "scaling A strong, B weak"


@pytest.mark.parametrize("sd, effect, threshold", [(0.08, 0.20, 0.10), (0.052, 0.17, 0.05), (0.03, 0.10, 0.05)])
def test_the_pairs_planned_catch_the_effect_as_often_as_asked_under_the_verdict_s_own_rule(sd, effect, threshold):
    """Pairs drawn with a pair sd and a true effect, judged by ``judge_pairs`` itself: the
    planned number is slower at least 80% of the time, one pair fewer is not. (A normal
    approximation had planned 3 pairs at sd 0.052 for 17% beyond 5%: power 0.49, a user's
    simulation; 7 here for the first case.)"""
    import numpy as np
    from distbench.core.stats import pairs_to_detect

    needed = pairs_to_detect(sd, effect, threshold)
    rng = np.random.default_rng(0)

    def power(n: int) -> float:
        draws = rng.normal(math.log1p(effect), sd, size=(4000, n))
        return float(np.mean([compare.judge_pairs(list(d), threshold).verdict == "slower" for d in draws]))

    assert power(needed) >= 0.78 and (needed == 3 or power(needed - 1) < 0.8), (needed, power(needed))
    with pytest.raises(ValueError, match="cannot clear a threshold"):
        pairs_to_detect(0.08, 0.10, 0.10)


def test_a_plan_beyond_its_reach_says_more_than_not_a_count():
    """6% beyond a 5% band at a pair sd of 0.5 (pairs one after the other) needs about
    20,000 pairs: it printed 10000, the search's cap, as the count."""
    from distbench.render import plan_table

    noise = pairs.PairNoise(sd=0.5, pairs=10, runs=3, seconds_per_pair=None, lockstep=False)
    (far,) = pairs.plan({"c": noise}, ["c"], effect=0.06, threshold=0.05, power=0.8)
    assert far.pairs is None and plan_table.plan_rows([far], 0.06, 0.05)[0][3] == "more than 10,000"
    (never,) = pairs.plan({"c": noise}, ["c"], effect=0.04, threshold=0.05, power=0.8)
    assert plan_table.plan_rows([never], 0.04, 0.05)[0][3].startswith("never: 4%")


def test_lockstep_workers_take_turns_step_by_step(tmp_path):
    """Two threads stand in for a pair's processes: their timed steps strictly alternate,
    and neither ends (to evaluate) before the other has finished its steps."""
    import threading

    from distbench.core.lockstep import prefix
    from distbench.launchers.relay import Relay
    from distbench.trackers.lockstep import LockstepClock, Turns

    relay = Relay(str(tmp_path), ["A", "B"])
    events, lock = [], threading.Lock()

    def worker(name, steps):
        clock = LockstepClock(Turns(prefix(str(tmp_path), name)))
        for k in range(steps):
            clock.start()
            with lock:
                events.append((name, k))
            clock.stop()
        clock.turns.end()
        with lock:
            events.append((name, "evaluate"))

    threads = {n: threading.Thread(target=worker, args=(n, 4)) for n in ("A", "B")}
    for t in threads.values():
        t.start()
    relay.run(lambda name: threads[name].is_alive())
    for t in threads.values():
        t.join()
    relay.close()
    steps = [e for e in events if e[1] != "evaluate"]
    assert steps == [("A", 0), ("B", 0), ("A", 1), ("B", 1), ("A", 2), ("B", 2), ("A", 3), ("B", 3)]
    assert {e[0] for e in events[-2:]} == {"A", "B"} and all(e[1] == "evaluate" for e in events[-2:])


def test_a_cell_that_reads_none_of_the_sides_differences_is_not_compared():
    """``ab --b "--steps-per-execution 10"`` over fit and custom ran 8 pairs of custom against
    itself, UNDECIDED, exit 3, and stored B's custom cell with steps_per_execution 10 (a user's
    trial). Sides given alike are still compared: an A/A run is how one sees the noise."""
    a, b = ab.Side("A", "(as given)"), ab.Side("B", "--steps-per-execution 10", {"steps_per_execution": 10})
    fit = SPEC.replace(loop="fit")
    assert b.spec(SPEC).steps_per_execution == 1 and b.spec(fit).steps_per_execution == 10
    launch = FakeLaunch({"A": 10.0, "B": 10.0}, process_sd=0.002)
    custom, timed = ab.Interleaved(a, b, launch, threshold=0.1, lockstep=False, min_pairs=3, max_pairs=3).run(
        [SPEC, fit], lambda spec: None)
    assert custom.verdict == "skipped" and not custom.pairs and custom.skipped == (
        "the sides run it alike: it reads none of the options that tell them apart ((as given); "
        "--steps-per-execution 10)")
    assert timed.verdict == "same" and len(launch.order) == 6
    assert pairs.outcome([custom, timed]).exit_status == compare.EXIT_PASS
    (alike,) = ab.Interleaved(ab.Side("A", "a"), ab.Side("B", "b"), FakeLaunch({"A": 10.0, "B": 10.0}, process_sd=0.002),
                              threshold=0.1, lockstep=False, min_pairs=3, max_pairs=3).run([SPEC], lambda spec: None)
    assert alike.verdict == "same" and len(alike.pairs) == 3


def test_a_side_that_hangs_in_its_turn_is_named_and_its_waiting_partner_says_so(tmp_path, monkeypatch):
    """B hangs inside its step (a model's tf.py_function sleeping): A waits for the turn B
    holds, and both processes reach their deadline. Both had read "timed out", as if A hung
    too (a user's trial); A's record now says it waited for B's turn."""
    import threading
    import time

    from distbench.core.lockstep import prefix
    from distbench.launchers.relay import Relay
    from distbench.trackers.lockstep import LockstepClock, Turns

    from distbench.launchers import relay as relay_module

    monkeypatch.setattr(relay_module, "HELD_S", 1.0)   # 5 s in use: a turn no running cell's step holds
    relay = Relay(str(tmp_path), ["A", "B"])
    alive, hung, release = {"A": True, "B": True}, threading.Event(), threading.Event()

    def worker(name):
        clock = LockstepClock(Turns(prefix(str(tmp_path), name)))
        for k in range(3):
            clock.start()
            if name == "B" and k == 1:
                hung.set()
                release.wait(30)   # the process hangs here until it is killed
                return
            clock.stop()
        clock.turns.end()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in ("A", "B")]
    for t in threads:
        t.start()
    runner = threading.Thread(target=relay.run, args=(lambda name: alive[name],), kwargs={"poll_s": 0.05}, daemon=True)
    runner.start()
    assert hung.wait(30)
    time.sleep(1.2)   # past HELD_S
    alive.update(A=False, B=False)   # both deadlines: the launchers kill both processes
    runner.join(30)
    release.set()
    relay.close()
    assert relay.stalled == "B" and relay.held_s >= 1
    timeout = {"status": "error", "error_kind": "timeout", "reason": "timed out after 30 s"}
    said = relay.blame({"A": timeout, "B": timeout})
    assert said["B"] == timeout and said["A"]["reason"] == (
        f"timed out after 30 s (waiting for its turn, which side B had held for {relay.held_s:.0f} s when its "
        "process ended)")
    crashed = {"status": "error", "error_kind": "exception", "reason": "boom"}   # B ended in its turn, not hung
    assert relay.blame({"A": timeout, "B": crashed})["A"] == timeout
    relay.held_s = 0.05   # a pair that outlasted its deadline stepping as usual: no one's hang
    assert relay.blame({"A": timeout, "B": timeout})["A"] == timeout


def test_the_closing_lines_name_the_verdicts():
    """What `ab` and `check --against` print after measuring (before they save)."""

    slower = _run(FakeLaunch({"A": 10.0, "B": 15.0}), min_pairs=3, max_pairs=8)
    same = _run(FakeLaunch({"A": 10.0, "B": 10.0}), min_pairs=3, max_pairs=8)
    lines = verdicts.paired_lines(ab.Side("A", "revision HEAD~1"), ab.Side("B", "this tree"), pairs.outcome([slower]))
    assert lines[:2] == ["A: revision HEAD~1", "B: this tree"] and f"SLOWER: {slower.cell}" in lines
    assert lines[-2].startswith("NOT PASSED (exit 1)") and lines[-1] == "RESULT: slower (exit 1)"
    lines = verdicts.paired_lines(ab.Side("A", "a"), ab.Side("B", "b"), pairs.outcome([same]))
    assert lines[-2:] == ["PASS: 1 cell decided, none slower, none lost more than 0.05 of its test metric.",
                          "RESULT: pass (exit 0)"]


class _CtrlCAfter(FakeLaunch):
    """Ctrl-C when process ``stop`` would start."""

    def __init__(self, stop, *args, **kw):
        super().__init__(*args, **kw)
        self.stop = stop

    def __call__(self, spec, side):
        if len(self.order) + 1 == self.stop:
            raise KeyboardInterrupt
        return super().__call__(spec, side)


def test_a_worker_s_skip_ends_the_cell_and_a_crash_beside_it_fails_it():
    """A worker that finds it cannot train the model (a loop that skips it) ends the cell
    after one pair (it ran all eight); a crash on the other side is the cell's verdict."""
    def launch(crash):
        def run(spec, side):
            if side.name == "B" and crash:
                return {"cell": spec.id, "status": "error", "reason": "worker pid 1 was killed by SIGKILL",
                        "config": spec.to_dict()}
            return {"cell": spec.id, "status": "skipped", "reason": "custom: the model defines its own train_step (X)",
                    "config": spec.to_dict()}
        return run

    cell = _run(launch(False), min_pairs=3, max_pairs=8)
    assert (cell.verdict, cell.pairs, cell.skipped) == ("skipped", [], "custom: the model defines its own train_step (X)")
    crashed = _run(launch(True), min_pairs=3, max_pairs=8)
    assert crashed.verdict == "failed" and len(crashed.pairs) == 1


def test_an_interrupted_cell_s_verdict_says_interrupted_once():
    """Ctrl-C after 5 pairs read ``interrupted (interrupted (Ctrl-C) after 5 pairs)``; a
    budget's reason still follows its verdict in brackets."""
    engine = ab.Interleaved(ab.Side("A", "a"), ab.Side("B", "b"), _CtrlCAfter(11, {"A": 10.0, "B": 10.0}),
                            threshold=0.1, lockstep=False, min_pairs=8, max_pairs=8)
    with pytest.raises(ab.PairsInterrupted) as stop:
        engine.run([SPEC], lambda spec: None)
    (cell,) = stop.value.cells
    table, (row,) = verdicts.paired_table([cell]), verdicts.paired_rows([cell])
    assert "interrupted (Ctrl-C) after 5 pairs" in table and table.count("interrupted") == 1, table
    assert row[-1] == "interrupted (Ctrl-C) after 5 pairs"
    budget = _run(FakeLaunch({"A": 10.0, "B": 10.0}), min_pairs=3, max_pairs=8)
    budget.stopped = "time budget of 60 s spent after 3 pairs"
    assert verdicts.paired_rows([budget])[0][-1] == f"{budget.verdict} (time budget of 60 s spent after 3 pairs)"


def test_a_side_that_learns_worse_is_a_regression_whatever_its_speed():
    """A learning rate of 500: the same speed, accuracy 0.48 -> 0.125 (it read PASS)."""
    cell = _run(FakeLaunch({"A": 10.0, "B": 10.0}, accuracy={"A": 0.484, "B": 0.125}), min_pairs=3, max_pairs=8)
    assert cell.verdict == "same" and cell.metric == ("accuracy", "higher")
    assert (cell.metric_of(0), cell.metric_of(1)) == (0.484, 0.125)
    found = pairs.outcome([cell])
    assert found.exit_status == 1 and found.less_accurate == [cell]
    lines = verdicts.paired_lines(ab.Side("A", "a"), ab.Side("B", "b"), found)
    assert (f"LESS ACCURATE: {cell.cell}: test accuracy A 0.484, B 0.125 (means); B - A -0.359 [95% CI -0.359, "
            f"-0.359] over {len(cell.pairs)} pairs; a loss beyond --accuracy-tolerance 0.05 is a regression") in lines
    assert lines[-1] == "RESULT: less accurate (exit 1)"
    assert pairs.outcome([cell], accuracy_tolerance=0.4).exit_status == 0      # within a tolerance given
    with pytest.raises(UserError, match=r"^--accuracy-tolerance 5 is not below 1, and accuracy is a share"):
        pairs.outcome([cell], accuracy_tolerance=5).exit_status   # 5 typed for 5%: it passed, exit 0
    assert cell.as_dict(5)["less_accurate"] is None   # the stored run is saved first: its pairs are not lost
    (row,) = verdicts.paired_rows([cell])
    assert row[-3:] == ["0.484", "0.125", "same, less accurate"]   # it read "same" (the speed's alone)
    assert verdicts.paired_rows([cell], tolerance=0.4)[0][-1] == "same"
    cell.stopped = "time budget of 60 s spent after 3 pairs"   # the csv/markdown/json row of a budget's stop
    assert verdicts.paired_rows([cell])[0][-1] == "same (time budget of 60 s spent after 3 pairs), less accurate"
    cell.stopped = None
    table = verdicts.paired_table([cell])
    assert table.splitlines()[-1].split()[-2:] == ["LESS", "ACCURATE"] and max(map(len, table.splitlines())) <= 120
    (doc,) = json.loads(verdicts.paired_document("a", "b", [cell], {}, None))["cells"]
    assert doc["verdict"] == "same, less accurate" and doc["values"]["less_accurate"] is True
    assert doc["values"]["metric_b"] == 0.125 and isinstance(doc["values"]["ratio"], float)
    assert cell.as_dict()["metric_a"] == 0.484 and cell.as_dict()["metric_b"] == 0.125   # stored with the run
    better = _run(FakeLaunch({"A": 10.0, "B": 10.0}, accuracy={"A": 0.125, "B": 0.484}), min_pairs=3, max_pairs=8)
    assert pairs.outcome([better]).exit_status == 0
    # Its speed undecided (noisy processes, 2 pairs), the loss of accuracy is still decided:
    # the closing lines had said "nothing was decided" above "RESULT: less accurate".
    noisy = _run(FakeLaunch({"A": 10.0, "B": 10.0}, process_sd=0.3, accuracy={"A": 0.484, "B": 0.125}),
                 min_pairs=2, max_pairs=2)
    assert noisy.verdict == "undecided" and pairs.outcome([noisy]).exit_status == 1
    lines = verdicts.paired_lines(ab.Side("A", "a"), ab.Side("B", "b"), pairs.outcome([noisy]))
    assert lines[-2] == "NOT PASSED (exit 1)" and lines[-1] == "RESULT: less accurate (exit 1)"
    slower = _run(FakeLaunch({"A": 10.0, "B": 15.0}, accuracy={"A": 0.484, "B": 0.125}), min_pairs=3, max_pairs=8)
    lines = verdicts.paired_lines(ab.Side("A", "a"), ab.Side("B", "b"), pairs.outcome([slower]))
    assert lines[-1] == "RESULT: slower and less accurate (exit 1)"


def test_a_side_that_reports_no_value_of_a_s_test_metric_is_less_accurate():
    """B's workload renamed its guard metric (or its processes gave none): A's metric has no
    value on side B. It read PASS (no number compared as no loss); the stored-run check
    already failed it."""
    cell = _run(FakeLaunch({"A": 10.0, "B": 10.0}, accuracy={"A": 0.484, "B": 0.5}), min_pairs=3, max_pairs=8)
    for pair in cell.pairs:
        pair[1]["accuracy"]["test"] = {"examples": 100, "renamed": 0.5}
    assert (cell.verdict, cell.metric_of(0), cell.metric_of(1)) == ("same", 0.484, None)
    found = pairs.outcome([cell])
    assert found.exit_status == 1 and found.less_accurate == [cell]
    lines = verdicts.paired_lines(ab.Side("A", "a"), ab.Side("B", "b"), found)
    assert (f"LESS ACCURATE: {cell.cell}: test accuracy A 0.484, B none (B's processes reported no accuracy)"
            in lines), lines


def test_a_lower_is_better_metric_loses_by_a_share_of_a_s_value():
    for a, b, worse in ((40.0, 41.9, False), (40.0, 42.1, True), (40.0, 30.0, False)):
        cell = _run(FakeLaunch({"A": 10.0, "B": 10.0}, accuracy={"A": a, "B": b}), min_pairs=3, max_pairs=8)
        for pair in cell.pairs:
            for r in pair:
                r["accuracy"]["guard_direction"], r["accuracy"]["guard_metric"] = "lower", "accuracy"
        assert cell.less_accurate(0.05) is worse, (a, b)
        with pytest.raises(UserError, match=r"^--accuracy-tolerance 5 is a share of A's accuracy, which is lower-is-"
                                            r"better: it would pass B at 6 times A's value"):
            cell.less_accurate(5)   # an MAE 3.8 times worse passed (a user's trial)
        # stored (and in --format json) as B - A in the metric's units: it was A - B for MAE
        assert cell.as_dict()["metric_differences"] == [pytest.approx(b - a)] * len(cell.pairs)


def test_input_bound_pairs_in_lockstep_are_named_and_no_lockstep_says_how_it_ran():
    """A side's pipeline fills while its partner steps: lockstep favours the side that steps
    second (run 0088: 8 ms against 46 ms by order alone), so such cells are named."""
    same = _run(FakeLaunch({"A": 10.0, "B": 10.0}), min_pairs=3, max_pairs=8)
    for record in same.pairs[0]:
        record["input"] = {"wait_share": 0.8, "input_bound": True}
    a, b = ab.Side("A", "a"), ab.Side("B", "b")
    same.lockstep = True   # as its pairs ran under lockstep
    lines = verdicts.paired_lines(a, b, pairs.outcome([same]))
    assert any(line.startswith(f"INPUT-BOUND: {same.cell}:") and "--no-lockstep" in line for line in lines)
    assert lines[2].startswith("Each pair ran one process of each side at once, taking turns step by step (lockstep);")
    failed = _run(FakeLaunch({"A": 10.0, "B": 10.0}), min_pairs=3, max_pairs=8)
    failed.lockstep, failed.pairs = True, [({"status": "error", "reason": "A's model failed"}, same.pairs[0][1])]
    lines = verdicts.paired_lines(a, b, pairs.outcome([failed]))   # side A failed: no pair to have favoured a side
    assert not any(line.startswith("INPUT-BOUND") for line in lines), lines
    for pair in same.pairs[1:]:   # one pair's processes of several: a 2 ms step's noise, not its pipeline
        for record in pair:
            record["input"] = {"wait_share": 0.1, "input_bound": False}
    assert not any(line.startswith("INPUT-BOUND") for line in verdicts.paired_lines(a, b, pairs.outcome([same])))
    same.lockstep = False
    lines = verdicts.paired_lines(a, b, pairs.outcome([same]), lockstep=False)
    assert not any(line.startswith("INPUT-BOUND") for line in lines)
    assert "after the other, the first side alternating (--no-lockstep)" in lines[2]


def test_a_cell_across_processes_is_not_said_to_have_run_in_lockstep():
    """Under lockstep, a multi_worker cell's sides still run one after the other (a cluster
    each): the closing line said every pair took turns step by step."""
    cell = _run(FakeLaunch({"A": 10.0, "B": 10.0}), min_pairs=3, max_pairs=8)
    assert not cell.lockstep and cell.as_dict()["lockstep"] is False
    for record in cell.pairs[0]:
        record["input"] = {"wait_share": 0.8, "input_bound": True}
    lines = verdicts.paired_lines(ab.Side("A", "a"), ab.Side("B", "b"), pairs.outcome([cell]), lockstep=True)
    assert (f"(lockstep), except {cell.cell}, whose sides train across processes; these ran one process of each side "
            "after the other") in lines[2]
    assert not any(line.startswith("INPUT-BOUND") for line in lines)


@pytest.mark.parametrize("strategy", ["multi_worker", "parameter_server"])
def test_a_task_of_a_real_cluster_runs_its_sides_one_after_the_other(monkeypatch, strategy):
    """Under TF_CONFIG this process's cell is one task of a real cluster (one local process):
    in lockstep both sides had started at once as the same task, on the same address."""
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["h1:2222", "h2:2222"]},
                                                "task": {"type": "worker", "index": 0}}))
    engine = ab.Interleaved(ab.Side("A", "a"), ab.Side("B", "b"), FakeLaunch({"A": 10.0, "B": 10.0}),
                            threshold=0.1, min_pairs=2, max_pairs=2)   # lockstep asked for
    (cell,) = engine.run([CellSpec("reuters_cnn", strategy, "custom")], lambda spec: None)
    assert not cell.lockstep and len(cell.pairs) == 2


def test_a_failed_process_is_named_with_its_whole_reason_and_its_lone_partner_is_not_counted():
    """The table shortens a failure to 120 characters; the closing lines give it whole. The
    partner of a process that failed ran alone, not in turns: its median stays out."""
    launch = FakeLaunch({"A": 10.0, "B": 10.0}, crash=4)   # pair 2's second process: side A (B A)
    cell = _run(launch, min_pairs=3, max_pairs=8)
    long_reason = "Loading model.py failed: " + "x" * 150 + " SyntaxError: invalid syntax (model.py, line 37)"
    cell.pairs[1][0]["reason"] = long_reason
    assert cell.verdict == "failed" and len(cell.pairs) == 2
    lines = verdicts.paired_lines(ab.Side("A", "a"), ab.Side("B", "b"), pairs.outcome([cell]))
    assert f"  {cell.cell}, pair 2, side A: error: {long_reason}" in lines
    (row,) = verdicts.paired_rows([cell])
    alone = cell.pairs[1][1]["step_time"]["median"]
    assert row[3] == units.ms(cell.pairs[0][1]["step_time"]["median"]) != units.ms(alone)


def test_a_side_that_cannot_run_the_cell_is_named_and_each_side_stored_as_it_was_asked():
    """``ab --a "--keras keras3" --b "--keras tf_keras"`` on a workload written for Keras 3
    only: side B's reason, and each side's own spec in the run."""
    a, b = ab.Side("A", "--keras keras3", {"keras": "keras3"}), ab.Side("B", "--keras tf_keras", {"keras": "tf_keras"})
    engine = ab.Interleaved(a, b, FakeLaunch({"A": 10.0, "B": 10.0}), lockstep=False)
    reason = "sent: written for keras3, not tf_keras"
    (cell,) = engine.run([SPEC], lambda spec: reason if spec.keras == "tf_keras" else None)
    assert cell.verdict == "missing" and cell.skipped == f"side B: {reason}" and not cell.pairs
    assert verdicts.paired_lines(a, b, pairs.outcome([cell]))[2] == "No pair ran: no cell could be measured on both sides."
    stored = paired_run.records_by_side([cell])
    assert stored[f"{cell.cell}@A"][0]["config"]["keras"] == "keras3"
    assert stored[f"{cell.cell}@B"][0]["config"]["keras"] == "tf_keras" and stored[f"{cell.cell}@B"][0]["reason"] == reason
    lines = verdicts.paired_lines(a, b, pairs.outcome([cell]))
    assert f"MISSING: {cell.cell} (side B: {reason}): the other side's processes have nothing to be compared with" in lines
    assert "The sides differ in: keras A keras3, B tf_keras" in lines and lines[-1] == "RESULT: not passed (exit 3)"
    # Beside a decided cell, a cell only one side can run still fails closed; skipped on both it does not.
    same = _run(FakeLaunch({"A": 10.0, "B": 10.0}), min_pairs=3, max_pairs=8)
    assert pairs.outcome([same, cell]).exit_status == compare.EXIT_UNDECIDED
    assert pairs.outcome([same, cell], allow_missing=True).exit_status == compare.EXIT_PASS
    both = ab.Interleaved(a, b, FakeLaunch({"A": 10.0, "B": 10.0}), lockstep=False).run([SPEC], lambda spec: "no GPU")
    assert both[0].verdict == "skipped" and pairs.outcome([same, *both]).exit_status == compare.EXIT_PASS
    assert pairs.outcome(both).exit_status == compare.EXIT_UNDECIDED   # skipped alone: nothing decided, no pass


def test_the_sides_settings_that_differ_are_named():
    """check --against: the revision's matrix file sets batch 8, the working tree's 32."""
    revision = ab.Side("A", "revision HEAD", {"global_batch": 8})
    (batched,) = ab.Interleaved(revision, ab.Side("B", "b"), _BatchedLaunch({"A": 10.0, "B": 15.0}), threshold=0.1,
                                lockstep=False, min_pairs=3, max_pairs=3).run([SPEC], lambda spec: None)
    lines = verdicts.paired_lines(revision, ab.Side("B", "this working tree"), pairs.outcome([batched]))
    (line,) = [line for line in lines if line.startswith("The sides differ in: ")]
    assert line.startswith(f"The sides differ in: global_batch A 8, B {SPEC.global_batch} (a step of another batch")
    cell = _run(FakeLaunch({"A": 10.0, "B": 15.0}), min_pairs=3, max_pairs=8)
    same = verdicts.paired_lines(ab.Side("A", "a"), ab.Side("B", "b"), pairs.outcome([cell]))
    assert not any(line.startswith("The sides differ") for line in same)
    # A version's matrix file may set what no cell reads (--devices for a default cell): no difference to name.
    unread = verdicts.paired_lines(ab.Side("A", "revision HEAD", {"devices": 4, "global_batch": 8}),
                                   ab.Side("B", "this working tree"), pairs.outcome([cell]))
    (line,) = [line for line in unread if line.startswith("The sides differ in: ")]
    assert SPEC.strategy == "default" and "devices" not in line and "global_batch A 8" in line
    # An environment variable is a difference too (oneDNN off on B had gone unsaid).
    env = verdicts.paired_lines(ab.Side("A", "--intra-op-threads 1", {"intra_op_threads": 1}),
                                ab.Side("B", "TF_ENABLE_ONEDNN_OPTS=0", env={"TF_ENABLE_ONEDNN_OPTS": "0"}),
                                pairs.outcome([cell]))
    (line,) = [line for line in env if line.startswith("The sides differ in: ")]
    assert line == ("The sides differ in: intra_op_threads A 1, B 0; TF_ENABLE_ONEDNN_OPTS A (as inherited), B 0"), line
    # ... with the value A's workers inherit from the command (it was said not which).
    for environ, said in (({"TF_ENABLE_ONEDNN_OPTS": "1"}, "A 1 (as inherited), B 0"), ({}, "A (unset), B 0")):
        a, b = with_inherited(ab.Side("A", ""), ab.Side("B", "TF_ENABLE_ONEDNN_OPTS=0",
                                                            env={"TF_ENABLE_ONEDNN_OPTS": "0"}), environ)
        assert a.inherited == {"TF_ENABLE_ONEDNN_OPTS": environ.get("TF_ENABLE_ONEDNN_OPTS")} and b.inherited == {}
        (line,) = [line for line in verdicts.paired_lines(a, b, pairs.outcome([cell]))
                   if line.startswith("The sides differ in: ")]
        assert line == f"The sides differ in: TF_ENABLE_ONEDNN_OPTS {said}", line
    # B sets what A inherits (an A/A run): no difference; and what A's workers start with,
    # not the command's own value (TF_CPP_MIN_LOG_LEVEL is theirs).
    same = with_inherited(ab.Side("A", ""), ab.Side("B", "x", env={"TF_ENABLE_ONEDNN_OPTS": "1"}),
                          {"TF_ENABLE_ONEDNN_OPTS": "1"})
    assert not any(line.startswith("The sides differ") for line in verdicts.paired_lines(*same, pairs.outcome([cell])))
    a, _ = with_inherited(ab.Side("A", ""), ab.Side("B", "x", env={"TF_CPP_MIN_LOG_LEVEL": "0"}),
                          {"TF_CPP_MIN_LOG_LEVEL": "3"})
    # Stored as the workers had it (a run of a shell's oneDNN setting had stored side A as setting nothing).
    assert a.inherited == a.describe()["inherited"] == {"TF_CPP_MIN_LOG_LEVEL": "2"}


def test_sides_that_set_the_keras_flavour_compare_once_not_once_per_flavour_cell():
    """multi_worker plans a cell per flavour; ``--a "--keras keras3" --b "--keras tf_keras"``
    made both the same comparison, the second stored as ``-tf_keras`` with side A on Keras 3."""
    base = SPEC.replace(strategy="multi_worker")
    cells = [base, base.replace(keras="tf_keras")]
    a, b = ab.Side("A", "--keras keras3", {"keras": "keras3"}), ab.Side("B", "--keras tf_keras", {"keras": "tf_keras"})
    launch = FakeLaunch({"A": 10.0, "B": 10.0})
    paired = ab.Interleaved(a, b, launch, threshold=0.1, lockstep=False, min_pairs=3, max_pairs=3).run(
        cells, lambda spec: None)
    assert [c.cell for c in paired] == [base.id] and len(launch.order) == 6
    stored = paired_run.records_by_side(paired)
    assert stored[f"{base.id}@A"][0]["config"]["keras"] == "keras3"
    assert stored[f"{base.id}@B"][0]["config"]["keras"] == "tf_keras"
    plain = ab.Interleaved(ab.Side("A", "a"), ab.Side("B", "b"), FakeLaunch({"A": 10.0, "B": 10.0}), threshold=0.1,
                           lockstep=False, min_pairs=3, max_pairs=3).run(cells, lambda spec: None)
    assert [c.cell for c in plain] == [c.id for c in cells]   # sides that keep the flavour: both cells
    # Under TF_USE_LEGACY_KERAS=1 the plan is tf-keras's; the id names what the sides ran.
    legacy = [base.replace(keras="tf_keras")]
    for a_keras, b_keras, cell in (("keras3", "tf_keras", base.id), ("keras3", "keras3", base.id),
                                   ("tf_keras", "tf_keras", legacy[0].id)):
        sides = ab.Side("A", f"--keras {a_keras}", {"keras": a_keras}), ab.Side("B", f"--keras {b_keras}",
                                                                                 {"keras": b_keras})
        flavoured = ab.Interleaved(*sides, FakeLaunch({"A": 10.0, "B": 10.0}), threshold=0.1, lockstep=False,
                                   min_pairs=3, max_pairs=3).run(legacy, lambda spec: None)
        assert [c.cell for c in flavoured] == [cell], (a_keras, b_keras)
    # Both flavours planned, one side pinned to Keras 3: two comparisons, one stored under each name.
    both = ab.Interleaved(ab.Side("A", "--keras keras3", {"keras": "keras3"}), ab.Side("B", "b"),
                          FakeLaunch({"A": 10.0, "B": 10.0}), threshold=0.1, lockstep=False, min_pairs=3,
                          max_pairs=3).run(cells, lambda spec: None)
    assert [c.cell for c in both] == [base.id, cells[1].id]


def test_each_pair_trains_both_sides_with_its_own_seed_so_one_unlucky_seed_is_not_a_regression():
    """A change that alters the model (B): per training seed its test accuracy is another
    draw of the same spread as A's. Seed 0 alone made B look 0.06 worse (a false LESS
    ACCURATE at the 0.05 tolerance, as when every pair trained with seed 0); over the pairs'
    seeds the medians agree."""
    by_seed = {"A": [0.40, 0.47, 0.42, 0.42, 0.40], "B": [0.34, 0.44, 0.45, 0.41, 0.46]}
    seeds = []

    def launch(spec, side):
        seeds.append((side.name, spec.training_seed))
        rec = record(spec.id, samples(10.0, n=50, spread=0.02, seed=len(seeds)), by_seed[side.name][spec.training_seed])
        rec["config"] = spec.to_dict()
        return rec

    cell = _run(launch, min_pairs=3, max_pairs=3)
    assert seeds == [("A", 0), ("B", 0), ("B", 1), ("A", 1), ("A", 2), ("B", 2)]   # a seed per pair, both sides
    assert (cell.metric_of(0), cell.metric_of(1)) == pytest.approx((0.43, 0.41))   # seeds 0-2's means
    assert not cell.less_accurate(0.05) and pairs.outcome([cell]).less_accurate == []



def test_a_side_s_own_training_seed_moves_with_the_pairs():
    """`ab --a "--init-seed 2" --b "--init-seed 1"` of identical code: every pair trained seeds
    2 and 1, three copies of one comparison judged as three pairs, B - A -0.199 [95% CI -0.199,
    -0.199]: LESS ACCURATE, exit 1 (a user's trial). Pair k now trains each side's seed + k."""
    by_seed = [0.68, 0.48, 0.60, 0.52, 0.66]
    seeds = []

    def launch(spec, side):
        seeds.append((side.name, spec.training_seed))
        rec = record(spec.id, samples(10.0, n=50, spread=0.02, seed=len(seeds)), by_seed[spec.training_seed])
        rec["config"] = spec.to_dict()
        return rec

    engine = ab.Interleaved(ab.Side("A", "a", changes={"init_seed": 2}), ab.Side("B", "b", changes={"init_seed": 1}),
                            launch, threshold=0.5, lockstep=False, min_pairs=3, max_pairs=3)
    (cell,) = engine.run([SPEC], lambda spec: None)
    assert seeds == [("A", 2), ("B", 1), ("B", 2), ("A", 3), ("A", 4), ("B", 3)]
    assert not cell.less_accurate(0.05) and cell.accuracy(0.05).interval[1] > 0   # seed luck, not a loss


def _examples_launch(test_b: str, train_b: str, accuracy_b: float | None = 0.9):
    """Sides whose records hash their examples (``data``): A's always ``t0``/``w0``, B's
    ``test_b`` and ``train_b`` (a whole hash over train and test, as workers store it)."""
    def launch(spec, side):
        test, whole, value = ("t0", "w0", 0.5) if side.name == "A" else (test_b, train_b, accuracy_b)
        rec = record(spec.id, samples(10.0, n=50, spread=0.01, seed=len(spec.id)), value)
        rec.update(config=spec.to_dict(), data={"fingerprint": whole, "test_fingerprint": test})
        return rec
    return launch


def test_sides_that_tested_on_other_examples_have_no_accuracy_verdict_and_do_not_pass():
    """A commit whose data() gave training rows as its test split, or whose model's output
    changed the labels synthetic data follows, read test accuracy A 0.419, B 0.452 and
    passed (exit 0, a user's trial): B's metric of other examples says nothing of B's model.
    Other training examples tested on the same ones still compare, and are said."""
    engine = lambda launch: ab.Interleaved(ab.Side("A", "a"), ab.Side("B", "b"), launch, threshold=0.5,
                                           lockstep=False, min_pairs=3, max_pairs=6, accuracy_tolerance=0.05)
    (other,) = engine(_examples_launch("t1", "w1")).run([SPEC], lambda spec: None)
    assert other.verdict == "same" and other.accuracy(0.05).verdict == "not comparable" and len(other.pairs) == 3
    outcome = pairs.outcome([other])
    assert outcome.exit_status == compare.EXIT_UNDECIDED and outcome.accuracy_not_comparable == [other]
    lines = verdicts.paired_lines(ab.Side("A", "a"), ab.Side("B", "b"), outcome)
    assert any(line.startswith(f"ACCURACY NOT COMPARABLE: {SPEC.id}: the sides' test examples differ (A t0, B t1)")
               for line in lines), lines
    assert lines[-1] == "RESULT: not passed (exit 3)" and "OTHER TEST DATA" in verdicts.paired_table([other])
    allowed = pairs.outcome([other], allow_missing=True)
    assert allowed.exit_status == compare.EXIT_PASS
    assert "1 cell not compared on it (other test examples, allowed by --allow-missing)" in "\n".join(
        verdicts.paired_lines(ab.Side("A", "a"), ab.Side("B", "b"), allowed))
    assert other.as_dict()["accuracy"] == "not comparable"
    # Trained on other examples, tested on the same: judged (here B learned better), and said.
    (trained,) = engine(_examples_launch("t0", "w1")).run([SPEC], lambda spec: None)
    assert trained.accuracy(0.05).verdict == pairs.WITHIN and pairs.outcome([trained]).exit_status == compare.EXIT_PASS
    assert (f"The sides trained on other examples: {SPEC.id} (A w0, B w1); their test examples are the same, so "
            "their test metrics compare") in verdicts.paired_lines(ab.Side("A", "a"), ab.Side("B", "b"),
                                                                   pairs.outcome([trained]))
    # A B that gave no metric at all is worse on any examples; so is one that lost beyond the
    # tolerance ("not comparable" had let it pass under --allow-missing).
    (diverged,) = engine(_examples_launch("t1", "w1", accuracy_b=None)).run([SPEC], lambda spec: None)
    assert diverged.less_accurate(0.05)
    (lost,) = engine(_examples_launch("t1", "w1", accuracy_b=0.1)).run([SPEC], lambda spec: None)
    assert lost.less_accurate(0.05) and pairs.outcome([lost], allow_missing=True).exit_status == compare.EXIT_REGRESSION
    assert "(on other test examples, A t0, B t1: " in verdicts.less_accurate_line(lost, 0.05)
    # Records without the hash (older workers, pipeline functions): nothing said of test examples.
    unhashed = _examples_launch(None, "w1")
    (old,) = engine(unhashed).run([SPEC], lambda spec: None)
    assert not side_lines.examples_lines([old]) and old.accuracy(0.05).verdict == pairs.WITHIN


def test_a_side_whose_own_processes_tested_on_other_examples_names_its_data_not_the_change():
    """A data() that shuffles its split without the seed it is given: each of A's processes
    tested on other examples, and the line blamed a change between the sides."""
    made = {"A": 0, "B": 0}

    def launch(spec, side):
        made[side.name] += 1
        test = f"a{made['A']}" if side.name == "A" else "t0"
        rec = record(spec.id, samples(10.0, n=50, spread=0.01, seed=len(spec.id)), 0.5)
        rec.update(config=spec.to_dict(), data={"fingerprint": "w" + test, "test_fingerprint": test})
        return rec

    (cell,) = ab.Interleaved(ab.Side("A", "a"), ab.Side("B", "b"), launch, threshold=0.5, lockstep=False, min_pairs=3,
                             max_pairs=3, accuracy_tolerance=0.05).run([SPEC], lambda spec: None)
    assert cell.accuracy_not_comparable(0.05) and pairs.examples_vary(cell.pairs) == {"A": "a1, a2"}
    lines = verdicts.paired_lines(ab.Side("A", "a"), ab.Side("B", "b"), pairs.outcome([cell]))
    (line,) = [line for line in lines if line.startswith("ACCURACY NOT COMPARABLE")]
    assert line.startswith(f"ACCURACY NOT COMPARABLE: {SPEC.id}: side A's own processes tested on other examples "
                           "from one another (A a1, a2)") and "the sides' test examples differ" not in line, line
    assert lines[-1] == "RESULT: not passed (exit 3)"
    # B's varying alone is named as B's, both sides' as both; a failed pair's records are not read.
    ok = lambda h, status="ok": {"status": status, "data": {"test_fingerprint": h}}   # noqa: E731
    assert pairs.examples_vary([(ok("t"), ok(b)) for b in ("b1", "b1", "b2")]) == {"B": "b1, b2"}
    assert pairs.examples_vary([(ok(f"a{k}"), ok(f"b{k}")) for k in (1, 2)]) == {"A": "a1, a2", "B": "b1, b2"}
    assert pairs.examples_vary([(ok("a1"), ok("t")), (ok("a2", "error"), ok("t"))]) == {}


class _NoisyAccuracy:
    """Processes of a cell whose test accuracy varies from one process to the next whatever
    the seed (a parameter-server cell: 0.276 to 0.409 over one side's processes, a user's
    trial), each side's values in turn, B's lowered by ``loss``."""

    def __init__(self, values, loss=0.0, jitter=0.0):
        self.values, self.loss, self.jitter, self.calls = values, loss, jitter, {"A": 0, "B": 0}

    def __call__(self, spec, side):
        k = self.calls[side.name]
        self.calls[side.name] += 1
        value = self.values[side.name][k % len(self.values[side.name])] - (self.loss if side.name == "B" else 0.0)
        step = 10.0 * (1 + self.jitter * (-1) ** k if side.name == "B" else 1)   # B/A swings by the jitter
        rec = record(spec.id, samples(step, n=50, spread=0.01, seed=k), value)
        rec["config"] = spec.to_dict()
        return rec


def test_identical_sides_whose_accuracy_varies_by_process_are_not_less_accurate():
    """ab of identical sides of a parameter-server cell read LESS ACCURATE (exit 1): B's median
    over three processes 0.32, A's 0.39, beyond the 0.05 tolerance, though nothing differed.
    The pairs' differences (-0.133, -0.07, +0.12) say they cannot tell; and where B truly lost
    0.3 in every pair, that noise does not hide it."""
    values = {"A": [0.409, 0.39, 0.28], "B": [0.276, 0.32, 0.40]}
    cell = _run(_NoisyAccuracy(values), min_pairs=3, max_pairs=3, threshold=0.5)
    assert cell.verdict == "same" and (cell.metric_of(0), cell.metric_of(1)) == pytest.approx((0.3597, 0.332), abs=1e-4)
    assert tolerance.metric_worse(0.39, 0.32, "higher", 0.05)   # the medians' rule it read by
    # Each side's figure is the one the cells' tables show for its processes (a median had read
    # 0.925 there against the table's 0.918), and the stored run's note names it.
    from distbench.render.stored_pairs import stored_paired_note
    from distbench.storage.results import CellResult

    for k in (0, 1):
        assert cell.metric_of(k) == pytest.approx(CellResult.of(cell.cell, [p[k] for p in cell.pairs]).accuracy)
    part = paired_run.stored_document_part(ab.Side("A", "a"), ab.Side("B", "b"), [cell], {"threshold": 0.5})
    assert "test A and B are means over the pairs" in stored_paired_note(part)
    assert "test A and B are medians over the pairs" in stored_paired_note({"threshold": 0.5})   # runs stored before
    assert not cell.less_accurate(0.05) and cell.accuracy_undecided(0.05)
    found = pairs.outcome([cell])
    assert found.exit_status == compare.EXIT_UNDECIDED and found.accuracy_undecided == [cell]   # never a pass
    lines = verdicts.paired_lines(ab.Side("A", "a"), ab.Side("B", "b"), found)
    line = next(line for line in lines if line.startswith("ACCURACY UNDECIDED: "))
    assert "B - A -0.028 [95% CI -0.355, +0.300] over 3 pairs" in line and "--max-pairs" in line, line
    assert lines[-1] == "RESULT: not passed (exit 3)" and not any("LESS ACCURATE" in x for x in lines)
    allowed = pairs.outcome([cell], allow_undecided=True)
    assert allowed.exit_status == 0
    assert verdicts.paired_lines(ab.Side("A", "a"), ab.Side("B", "b"), allowed)[-2] == (
        "PASS: 1 cell decided, none slower, none judged to have lost more than 0.05 of its test metric, 1 cell "
        "undecided on it (allowed by --allow-undecided).")
    assert verdicts.paired_rows([cell])[0][-1] == "same, accuracy undecided"
    assert verdicts.paired_table([cell]).splitlines()[-1].endswith("ACCURACY UNDECIDED")
    stored = cell.as_dict()
    assert stored["accuracy"] == "undecided" and stored["less_accurate"] is False
    assert len(stored["metric_differences"]) == 3 and stored["metric_interval"][0] < -0.05 < stored["metric_interval"][1]
    # An engine told the tolerance runs pairs on while the accuracy is undecided (to --max-pairs);
    # one judging speed alone (the overhead check's) stops at the speed's verdict.
    assert len(_run(_NoisyAccuracy(values), min_pairs=3, max_pairs=5, threshold=0.5, accuracy_tolerance=0.05).pairs) == 5
    assert len(_run(_NoisyAccuracy(values), min_pairs=3, max_pairs=5, threshold=0.5).pairs) == 3
    lost = _run(_NoisyAccuracy(values, loss=0.3), min_pairs=3, max_pairs=3, threshold=0.5)
    assert lost.accuracy_undecided(0.05)   # three such pairs cannot tell even 0.3 (t with 2 degrees of freedom)
    lost = _run(_NoisyAccuracy(values, loss=0.3), min_pairs=3, max_pairs=8, threshold=0.5, accuracy_tolerance=0.05)
    assert lost.less_accurate(0.05) and 3 < len(lost.pairs) < 8   # a fourth pair decides it
    assert pairs.outcome([lost]).exit_status == compare.EXIT_REGRESSION


def test_a_share_s_difference_is_never_said_to_reach_beyond_its_range():
    """Two pairs of accuracies 0.9 -> 0.1 and 0.1 -> 0.9: the t interval of their mean
    difference (t with 1 degree of freedom) ran from -10.2 to +10.2, a difference of
    accuracies no pair could have; it reads [-1, +1]. A loss keeps its interval."""
    wide = pairs.judge_metric([(0.9, 0.1), (0.1, 0.9)], "higher", 0.05, "accuracy")
    assert wide.interval == (-1.0, 1.0) and wide.verdict == compare.UNDECIDED
    assert pairs.judge_metric([(0.9, 0.1), (0.1, 0.9)], "higher", 0.05, "my_score").interval[0] < -10   # not a share
    loss = pairs.judge_metric([(0.9, 0.5), (0.9, 0.55), (0.9, 0.52)], "higher", 0.05, "val_auc")
    assert loss.verdict == "worse" and -0.5 < loss.interval[0] < loss.interval[1] < -0.3
    mae = pairs.judge_metric([(4.0, 9.0), (9.0, 4.0)], "lower", 0.05, "mae")   # an error has no upper bound
    assert mae.interval[1] > 1


class _BatchedLaunch(FakeLaunch):
    """FakeLaunch whose records carry the global batch of the side's own spec."""

    def __call__(self, spec, side):
        rec = super().__call__(spec, side)
        rec["batch"] = {**rec["batch"], "global": spec.global_batch}
        return rec


def test_sides_of_other_batches_are_judged_per_example_and_of_other_step_counts_not_in_lockstep(monkeypatch):
    """A user's ab of --global-batch 32 against 256: B's step took 1.26x A's for 8x the
    examples, and the verdict read "slower", exit 1. A ratio of time per example finds it
    faster. And --steps-per-epoch 20 against 200 ran in lockstep, so that B stepped alone,
    on a quieter machine, once A had ended; those sides now run one after the other."""
    a, b = ab.Side("A", "a"), ab.Side("B", "b", {"global_batch": 256})
    engine = ab.Interleaved(a, b, _BatchedLaunch({"A": 10.0, "B": 12.6}), threshold=0.1, lockstep=False,
                            min_pairs=3, max_pairs=3)
    (cell,) = engine.run([SPEC], lambda spec: None)
    assert cell.per_example and cell.verdict == "faster", cell.as_dict()
    assert cell.judgement.ratio == pytest.approx(12.6 / 10 * 32 / 256, rel=0.1)
    cell.lockstep = True   # its steps are near each other's: not UNEVEN, though its B/A per example is 0.16
    assert cell.step_ratio == pytest.approx(1.26, rel=0.1) and not verdicts.uneven_lines([cell])
    (line,) = side_lines.setting_lines(a, b, [cell])
    assert "global_batch A 32, B 256" in line and "B/A compares the time per example" in line, line
    # The table's medians are per step and per side: the closing lines say what each figure is.
    said = " ".join(verdicts.paired_lines(a, b, pairs.outcome([cell])))
    assert "The median A and B columns are each side's over its processes" in said and "B/A is the pairs'" in said
    for pair in cell.pairs:   # a side that records no batch (the overhead's bare loop): step times, as before
        del pair[0]["batch"]
    assert not cell.per_example and cell.judgement.ratio == pytest.approx(1.26, rel=0.1)
    plain = _run(FakeLaunch({"A": 10.0, "B": 12.6}), min_pairs=3, max_pairs=3)
    assert not plain.per_example and plain.verdict == "slower"
    # Other numbers of steps: one after the other, though lockstep was asked for, and said so.
    monkeypatch.setattr(ab.Interleaved, "_lockstep", lambda *args: pytest.fail("stepped in lockstep"))
    longer = ab.Side("B", "b", {"steps_per_epoch": 200})
    (cell,) = ab.Interleaved(a, longer, FakeLaunch({"A": 10.0, "B": 10.0}), threshold=0.1, lockstep=True,
                             min_pairs=3, max_pairs=3).run([SPEC], lambda spec: None)
    assert not cell.lockstep and len(cell.pairs) == 3
    how = verdicts.paired_lines(a, longer, pairs.outcome([cell]), lockstep=True)
    assert (f"except {cell.cell}, whose sides take other numbers of steps (steps_per_epoch A 100, B 200); these ran "
            "one process of each side after the other") in " ".join(how), how


def test_sides_far_apart_in_lockstep_are_named_uneven():
    """Beside a partner whose steps take 7 times as long, a side's own steps run slower in
    lockstep (B/A 6.6 against 15.7 one after the other, in a user's project): the ratio's
    direction stands, its size does not, and the closing lines say so."""
    a, b = ab.Side("A", "a"), ab.Side("B", "b")
    far = _run(FakeLaunch({"A": 10.0, "B": 70.0}), min_pairs=3, max_pairs=3)
    near = _run(FakeLaunch({"A": 10.0, "B": 15.0}), min_pairs=3, max_pairs=3)
    far.lockstep = near.lockstep = True
    lines = verdicts.paired_lines(a, b, pairs.outcome([far, near]))
    (uneven,) = [line for line in lines if line.startswith("UNEVEN: ")]
    assert uneven.startswith(f"UNEVEN: {far.cell} (steps B/A 7.") and "--no-lockstep" in uneven
    assert uneven.count(" (steps B/A ") == 1
    far.lockstep = False   # one after the other: each side measured alone
    assert not any(line.startswith("UNEVEN") for line in verdicts.paired_lines(a, b, pairs.outcome([far]), False))


def test_pair_settings_are_refused_before_anything_is_made():
    """check --against --min-pairs 1 made the revision's git worktree before the engine
    refused its pair counts; the settings refuse them as they are read now."""
    from distbench.core.errors import UserError
    from distbench.session.paired_run import Pairs

    with pytest.raises(UserError, match=r"^Pairs must satisfy 2 <= --min-pairs <= --max-pairs; received 1 and 8\.$"):
        Pairs(min_pairs=1, max_pairs=8)


def test_a_revision_side_that_ran_the_working_tree_s_code_is_never_let_through():
    """Its worker refused (an editable install of the user's package): only side A "failed",
    which --allow-missing let through beside a decided cell (exit 0)."""
    same = _run(FakeLaunch({"A": 10.0, "B": 10.0}), min_pairs=3, max_pairs=8)
    fake = FakeLaunch({"A": 10.0, "B": 10.0})

    def launch(spec, side):
        if side.name == "A":
            return {"cell": spec.id, "status": "error", "error_kind": "working_tree", "config": spec.to_dict(),
                    "reason": "this version's worker imported mypkg.model from the working tree"}
        return fake(spec, side)

    mixed = _run(launch, min_pairs=3, max_pairs=8)
    assert mixed.verdict == "failed" and mixed.failed_sides == {"A"}
    assert pairs.outcome([same, mixed], allow_missing=True).exit_status == compare.EXIT_UNDECIDED


def test_a_version_whose_matrix_file_sets_another_batch_is_not_comparable():
    """check --against and bisect: the revision's matrix file sets batch 8, the working tree's
    32. A step is then another amount of work, and its time no measure of speed (it had been
    judged: a halved batch beside a slower model passed). No pair runs; the check fails closed
    unless --allow-missing, as check --baseline does with runs of other settings. ab's sides
    differ in what the user asked for, and are measured."""
    version = SimpleNamespace(commit="0123abcd", spec=lambda spec: spec)
    launch = FakeLaunch({"A": 10.0, "B": 10.0})
    a, b = ab.Side("A", "revision HEAD~1", {"global_batch": 8}, checkout=version), ab.Side("B", "this working tree")
    (cell,) = ab.Interleaved(a, b, launch, threshold=0.1, lockstep=False).run([SPEC], lambda spec: None)
    assert cell.verdict == "not comparable" and not cell.pairs and not launch.order
    assert cell.incomparable == f"global_batch A 8, B {SPEC.global_batch}"
    found = pairs.outcome([cell])
    assert found.exit_status == compare.EXIT_UNDECIDED
    lines = verdicts.paired_lines(a, b, found)
    assert lines[-1] == "RESULT: not passed (exit 3)" and any(
        line.startswith(f"NOT COMPARABLE: {cell.cell} (global_batch A 8, B 32): ") for line in lines)
    same = _run(FakeLaunch({"A": 10.0, "B": 10.0}), min_pairs=3, max_pairs=8)
    assert pairs.outcome([same, cell]).exit_status == compare.EXIT_UNDECIDED
    assert pairs.outcome([same, cell], allow_missing=True).exit_status == compare.EXIT_PASS
    assert bisect.commit_verdict([same, cell]) == "failed"
    # Another number of steps: in lockstep one side steps alone once the other has ended, on a
    # quieter machine (a version's epochs 4 against 1 read "slower", 1.43x, for one model).
    for changes in ({"epochs": 1}, {"steps_per_epoch": SPEC.steps_per_epoch * 2}):
        side = ab.Side("A", "revision HEAD~1", changes, checkout=version)
        (fewer,) = ab.Interleaved(side, b, FakeLaunch({"A": 10.0, "B": 10.0}), threshold=0.1,
                                  lockstep=False).run([SPEC.replace(epochs=4)], lambda spec: None)
        assert fewer.verdict == "not comparable" and not fewer.pairs, changes
    # A cell that reads no batch (matmul), and weak scaling on one replica, are the same work.
    for spec, changes in ((CellSpec("matmul", "default", None), {"global_batch": 8}),
                          (SPEC, {"scaling": "weak"})):
        side = ab.Side("A", "revision HEAD~1", changes, checkout=version)
        (same_work,) = ab.Interleaved(side, b, FakeLaunch({"A": 10.0, "B": 10.0}), threshold=0.1,
                                      lockstep=False).run([spec], lambda spec: None)
        assert same_work.pairs and not same_work.incomparable, (spec, changes)
    stored = paired_run.records_by_side([cell])[f"{cell.cell}@A"][0]
    assert stored["status"] == "skipped" and stored["reason"] == "not comparable: global_batch A 8, B 32"
    # The same sides as ab's (no version): measured, the difference named.
    (measured,) = ab.Interleaved(replace(a, checkout=None), b, FakeLaunch({"A": 10.0, "B": 10.0}), threshold=0.1,
                                 lockstep=False).run([SPEC], lambda spec: None)
    assert measured.pairs and measured.verdict != "not comparable"


def test_sides_that_time_steps_in_groups_of_other_sizes_compare_mean_steps():
    """tune's confirmation and ``ab --b "--steps-per-execution 10"``: side B's samples are
    10-step means, near the mean step, while A's median of single steps sits below a skewed
    step time's mean (a step in ten takes 16 ms, the rest 10: median 10, mean 10.6). The
    same speed read B/A 1.06, slower at 5%; the pairs now compare mean steps, and say so."""
    rng = random.Random(3)

    def launch(spec, side):
        steps = [16.0 if rng.random() < 0.1 else 10.0 for _ in range(400)]
        if side.name == "B":
            steps = [sum(steps[i:i + 10]) / 10 for i in range(0, 400, 10)]
        rec = record(spec.id, [s / 1000 for s in steps])
        rec["steps"]["steps_per_sample"] = 10 if side.name == "B" else 1
        return rec

    cell = _run(launch, threshold=0.05, min_pairs=3, max_pairs=8)
    assert cell.statistic == "mean" and cell.judgement.ratio == pytest.approx(1.0, abs=0.02), cell.judgement
    assert cell.verdict == "same", cell.judgement
    lines = verdicts.paired_lines(ab.Side("A", "a"), ab.Side("B", "b"), pairs.outcome([cell]))
    assert any(line.startswith(f"MEAN STEPS: {cell.cell}: ") for line in lines), lines
    plain = _run(FakeLaunch({"A": 10.0, "B": 10.0}), min_pairs=3, max_pairs=8)
    assert plain.statistic == "median"   # one size on both sides: each process's median step, as before


def test_the_stopping_rule_s_repeated_looks_err_near_the_band_s_edge_at_most_6_percent():
    """Each new pair from --min-pairs to --max-pairs (3 to 8) is judged at 95%, and the first
    decided verdict stops the cell: up to six looks, uncorrected. Next to the band's edge a
    wrong verdict then comes more often than one look's 2.5%: ``slower`` for a true 4.5% (inside a
    5% band), ``same`` for a true 5.5%. Measured through the engine's own loop (pair sd 0.03,
    as pairs one after the other of a quiet cell); docs/design.md quotes it. ``-s`` prints it."""
    rng = random.Random(11)

    def launch(true_ratio):
        def one(spec, side):
            median = (true_ratio if side.name == "B" else 1.0) * math.exp(rng.gauss(0, 0.03 / math.sqrt(2)))
            return {"cell": spec.id, "status": "ok", "step_time": {"median": median}, "steps": {}}
        return one

    wrong = {}
    for true_ratio, error in ((1.045, "slower"), (1.055, "same")):
        engine = ab.Interleaved(ab.Side("A", "a"), ab.Side("B", "b"), launch(true_ratio), threshold=0.05,
                                lockstep=False)
        cells = [engine.run([SPEC], lambda spec: None)[0] for _ in range(1000)]
        wrong[true_ratio] = sum(c.verdict == error for c in cells) / len(cells)
    print("wrong verdicts near the band's edge:", wrong)
    assert all(rate <= 0.06 for rate in wrong.values()), wrong


def test_a_cell_the_revision_s_matrix_file_selects_and_this_tree_s_does_not_fails_closed(tmp_path):
    """check --against: the working tree's matrix file dropped a strategy (a change that took
    its regressed cell out of the matrix passed unchecked, where check --baseline fails closed
    on a cell only the baseline has). What the command line names is both sides' selection."""
    import subprocess

    from distbench.session.paired_run import dropped
    from distbench.session.project import Project

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                       env={**os.environ, "GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@x", "GIT_COMMITTER_NAME": "u",
                            "GIT_COMMITTER_EMAIL": "u@x"})

    matrix = tmp_path / "distbench.toml"
    matrix.write_text('strategies = ["default", "virtual"]\nloops = ["custom"]\n')
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "base")
    matrix.write_text('strategies = ["default"]\n')   # the change: virtual gone, and every loop selected
    with Project.find(str(matrix)).checkout("HEAD") as version:
        gone = dropped(version, str(matrix), {})
        assert gone == ("strategy virtual",)
        assert dropped(version, str(matrix), {"strategy": ["default"]}) == ()   # typed: both sides' selection
    # A workload of the project's, named by reference, its line taken out: every registered
    # workload (the built-ins) is not it, and it was measured on neither side, unsaid.
    matrix.write_text('workloads = ["model.py:Sentiment"]\nstrategies = ["default"]\n')
    git("add", "-A")
    git("commit", "-qm", "own model")
    matrix.write_text('strategies = ["default"]\n')
    with Project.find(str(matrix)).checkout("HEAD") as version:
        assert dropped(version, str(matrix), {}) == ("workload model.py:Sentiment",)
        assert dropped(version, str(matrix), {"plugin": ["model.py:Sentiment"]}) == ()   # typed: loaded on both sides
    matrix.write_text('strategies = ["default"]\nplugins = ["model.py:Sentiment"]\n')   # loaded: among "all"
    with Project.find(str(matrix)).checkout("HEAD") as version:
        assert dropped(version, str(matrix), {}) == ()
    matrix.write_text('strategies = ["default"]\n')
    same = _run(FakeLaunch({"A": 10.0, "B": 10.0}), min_pairs=3, max_pairs=8)
    found = pairs.outcome([same], dropped=gone)
    assert found.exit_status == compare.EXIT_UNDECIDED
    assert pairs.outcome([same], allow_missing=True, dropped=gone).exit_status == compare.EXIT_PASS
    lines = verdicts.paired_lines(ab.Side("A", "revision HEAD"), ab.Side("B", "this working tree"), found)
    assert "MISSING: revision HEAD's matrix file selects strategy virtual, which this tree's does not: those cells " \
           "were measured on neither side (name them on the command line to check them)" in lines


def test_a_tolerance_no_loss_of_a_share_could_pass_is_refused_before_any_pair(tmp_path, capsys):
    """ab --accuracy-tolerance 5 (5% meant) on accuracy: refused once every pair had been
    measured, and the run saved."""
    from distbench.cli.main import main

    code = main(["ab", "--b", "TF_ENABLE_ONEDNN_OPTS=0", "--workload", "reuters_cnn", "--strategy", "default",
                 "--loop", "custom", "--accuracy-tolerance", "5", "--results", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 2 and captured.err == ("distbench: error: --accuracy-tolerance 5 is not below 1, and accuracy is a "
                                          "share from 0 to 1: no loss of it could fail the check; give a fraction "
                                          "(0.05) or a percentage (5%).\n"), captured.err
    assert "[pair 1]" not in captured.out and not list(tmp_path.iterdir())   # nothing measured, nothing saved


def test_pairs_judging_accuracy_alone_stop_on_its_verdict_not_the_speed_s():
    """bisect --find less-accurate ran --min-pairs pairs whatever --max-pairs said, and an
    accuracy three pairs could not tell left the step UNDECIDED (a user's trial): its pairs
    now go on while the accuracy is undecided, and not for the speed."""
    steady = {"A": [0.9], "B": [0.9]}
    kw = dict(min_pairs=3, max_pairs=5, threshold=0.001, accuracy_tolerance=0.05)   # a band B/A's swing straddles
    assert len(_run(_NoisyAccuracy(steady, jitter=0.05), **kw).pairs) == 5                # the speed's undecided
    assert len(_run(_NoisyAccuracy(steady, jitter=0.05), speed=False, **kw).pairs) == 3   # the accuracy is decided
    noisy = {"A": [0.409, 0.39, 0.28, 0.35, 0.30], "B": [0.276, 0.32, 0.40, 0.41, 0.33]}
    cell = _run(_NoisyAccuracy(noisy, jitter=0.05), speed=False, **kw)
    assert len(cell.pairs) == 5 and cell.accuracy_undecided(0.05)
    from distbench.render import bisect_lines
    step = SimpleNamespace(refused=None, run=SimpleNamespace(cells=[cell], saved=None), verdict="undecided",
                           commit="c" * 40, index=1, subject="s", pairs=5)
    assert "accuracy undecided (--max-pairs)" in bisect_lines.step_line(1, step, 3, "less-accurate")
