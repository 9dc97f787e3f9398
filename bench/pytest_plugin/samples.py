"""Measured samples handed to pytest-benchmark as its own statistics."""

from __future__ import annotations


def record_samples(benchmark, samples: list[float]) -> None:
    """Makes pytest-benchmark's statistics those of ``samples`` (seconds).

    pytest-benchmark times a callable with its timer; each of our samples was measured
    in the worker process, so we hand it a timer that replays them: each round's
    ``end - start`` equals one sample. This uses the fixture's ``_timer`` attribute
    (pytest-benchmark 5.x, pinned in pyproject); tests check the stored statistics.
    """
    replay = _ReplayTimer(samples)
    benchmark._timer = replay
    benchmark.pedantic(replay.advance, rounds=len(samples), iterations=1, warmup_rounds=0)


class _ReplayTimer:
    def __init__(self, samples: list[float]) -> None:
        self._samples = list(samples)
        self._now = 0.0
        self._next = 0

    def __call__(self) -> float:
        return self._now

    def advance(self) -> None:
        self._now += self._samples[self._next]
        self._next += 1
