"""Step clocks. Timing code only times: no printing, no statistics, no I/O.

Every timed region must end after the device is synchronised (a materialised loss or
result); the callers guarantee that, and the clock records what they hand it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

Timer = Callable[[], float]


class StepClock:
    """Collects one duration per timed unit (a step, or an execution of several steps)."""

    def __init__(self, timer: Timer = time.perf_counter) -> None:
        self._timer = timer
        self._start: float | None = None
        self.durations: list[float] = []   # seconds per step within each unit
        self.steps: list[int] = []         # steps each unit covered
        self.waits: list[float] = []       # seconds each unit waited for its input (loops that time get_next)
        self.checks: list[Callable[[], None]] = []   # called as each unit ends, outside its time; may raise

    def start(self) -> None:
        self._start = self._timer()

    def stop(self, steps: int = 1) -> None:
        """Ends the unit begun by :meth:`start`; ``steps`` > 1 for multi-step executions."""
        if self._start is None:
            raise RuntimeError("StepClock.stop() called without start()")
        elapsed = self._timer() - self._start
        self._start = None
        self.durations.append(elapsed / steps)
        self.steps.append(steps)
        for check in self.checks:
            check()

    def waited(self, seconds: float) -> None:
        """The time the current (or just ended) unit spent waiting for its next batch."""
        self.waits.append(seconds)

    @property
    def total_steps(self) -> int:
        return sum(self.steps)


@dataclass(frozen=True)
class StepTimes:
    """A run's step durations split into cold start, warm-up and steady state."""

    cold_start_s: float          # the first unit: tracing, compilation, first step
    warmup: list[float]
    steady: list[float]
    steps_per_sample: int

    @classmethod
    def split(cls, clock: StepClock, warmup_steps: int) -> "StepTimes":
        """First unit is the cold start; then units covering ``warmup_steps`` are dropped."""
        if not clock.durations:
            raise ValueError("no steps were timed")
        per_unit = max(clock.steps[1:] or clock.steps)
        skip = 1 + -(-warmup_steps // per_unit)   # ceil(warmup / steps per unit)
        return cls(
            cold_start_s=clock.durations[0] * clock.steps[0],
            warmup=clock.durations[1:skip],
            steady=clock.durations[skip:],
            steps_per_sample=per_unit,
        )


def time_repeats(fn: Callable[[], object], repeats: int, timer: Timer = time.perf_counter) -> list[float]:
    """Times ``repeats`` calls of ``fn``; ``fn`` must materialise its result before returning."""
    samples = []
    for _ in range(repeats):
        start = timer()
        fn()
        samples.append(timer() - start)
    return samples
