import pytest
from distbench.trackers.timing import StepClock, StepTimes, time_repeats


class FakeTimer:
    """Returns the given instants in order (seconds)."""

    def __init__(self, *instants):
        self.instants = list(instants)

    def __call__(self):
        return self.instants.pop(0)


def test_clock_records_per_step_durations_and_divides_multi_step_units():
    clock = StepClock(FakeTimer(0.0, 2.0, 2.0, 2.5, 3.0, 4.0))
    clock.start(); clock.stop()            # 2.0 s cold start
    clock.start(); clock.stop()            # 0.5 s
    clock.start(); clock.stop(steps=4)     # 1.0 s over 4 steps -> 0.25 s/step
    assert clock.durations == [2.0, 0.5, 0.25]
    assert clock.steps == [1, 1, 4]
    assert clock.total_steps == 6


def test_stop_without_start_is_an_error():
    with pytest.raises(RuntimeError, match="without start"):
        StepClock().stop()


def test_split_separates_cold_start_warmup_and_steady_state():
    clock = StepClock()
    clock.durations, clock.steps = [5.0, 0.3, 0.2, 0.1, 0.1, 0.1], [1] * 6
    times = StepTimes.split(clock, warmup_steps=2)
    assert times.cold_start_s == 5.0
    assert times.warmup == [0.3, 0.2]
    assert times.steady == [0.1, 0.1, 0.1]


def test_split_counts_warmup_in_steps_when_units_cover_several_steps():
    clock = StepClock()
    # steps_per_execution=10: the cold unit covers 10 steps at 0.5 s/step.
    clock.durations, clock.steps = [0.5, 0.02, 0.01, 0.01], [10, 10, 10, 10]
    times = StepTimes.split(clock, warmup_steps=5)   # ceil(5/10) = 1 unit of warm-up
    assert times.cold_start_s == pytest.approx(5.0)
    assert times.warmup == [0.02]
    assert times.steady == [0.01, 0.01]
    assert times.steps_per_sample == 10


def test_time_repeats_uses_the_injected_timer():
    calls = []
    samples = time_repeats(lambda: calls.append(1), 2, timer=FakeTimer(0.0, 1.5, 2.0, 2.25))
    assert samples == [1.5, 0.25] and len(calls) == 2


def test_a_lockstep_worker_s_partner_is_not_a_disturbance():
    """Every process of ab and check --against read DISTURBED (27-63% of the CPU used by
    others): its partner steps while it waits for its turn."""
    from distbench.trackers import lockstep

    found = {"disturbed": True, "others_cpu": 0.55, "steal": 0.0, "cores": 2}
    paired = lockstep.disturbance(found, lockstep.LockstepClock(turns=None))
    assert paired["disturbed"] is False and paired["others_cpu"] == 0.55 and "partner" in paired["lockstep"]
    assert lockstep.disturbance(found, StepClock()) is found and lockstep.disturbance(None, StepClock()) is None


def test_a_lockstep_step_s_fault_stays_the_reason_when_the_relay_is_gone_too():
    """A check that fails the cell at a step's end (a parameter-server fault) must not be
    masked by the turn's hand-back failing after it (the parent's relay gone meanwhile):
    the record's reason was then a BrokenPipeError's."""
    from distbench.trackers import lockstep
    from distbench.trackers.cluster_faults import ClusterFault

    class GoneRelay:
        handed = 0

        def before(self):
            pass

        def after(self):
            self.handed += 1
            raise BrokenPipeError(32, "Broken pipe")

    def fault():
        raise ClusterFault("the parameter-server cluster lost a worker")

    clock = lockstep.LockstepClock(turns=GoneRelay(), timer=FakeTimer(0.0, 1.0, 1.0, 2.0))
    clock.checks.append(fault)
    clock.start()
    with pytest.raises(ClusterFault, match="lost a worker"):
        clock.stop()
    assert clock.turns.handed == 1 and clock.durations == [1.0]
    clock.checks.clear()
    clock.start()
    with pytest.raises(BrokenPipeError):   # without a fault, a relay gone is the error
        clock.stop()


def test_disturbance_is_counted_on_the_cores_the_process_may_run_on(tmp_path):
    """A process held to core 0 of two (taskset -c 0), with another busy on core 1: counted
    over the whole machine, the other core's work read as its disturbance, 135-165% of its
    capacity in a user's trial. Over 10 s, core 0 runs only this process's 9.5 s, core 1
    another process's 10 s (/proc/stat's lines, in clock ticks)."""
    import dataclasses
    import os

    from distbench.trackers.disturbance import Snapshot, between

    tick = os.sysconf("SC_CLK_TCK")
    for name, core0, core1 in (("start", 0, 0), ("end", 9.5, 10.0)):
        rows = (("cpu", core0 + core1, 20), ("cpu0", core0, 10), ("cpu1", core1, 10))
        (tmp_path / name).write_text("".join(f"{cpu} {round(busy * tick)} 0 0 {round((whole - busy) * tick)} 0 0 0 0\n"
                                             for cpu, busy, whole in rows))
    for cpus, others in (({0}, 0.0), (None, 0.5)):   # pinned: nobody else on core 0; all cores: the other's 10 s of 20
        start, end = (dataclasses.replace(Snapshot.take(cpus, str(tmp_path / name)), wall=wall, own=own)
                      for name, wall, own in (("start", 0.0, 0.0), ("end", 10.0, 9.5)))
        found = between(start, end, len(cpus) if cpus else 2)
        assert found["others_cpu"] == pytest.approx(others, abs=1e-6), (cpus, found)
    assert Snapshot.take({5}, str(tmp_path / "end")) is None   # a core /proc/stat does not list: nothing, no guess
