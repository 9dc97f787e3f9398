"""The time-to-target part of the read model (:class:`distbench.storage.results.CellResult`):
a time-to-target cell's processes are its training seeds (each run ``--repeats`` times),
and what it reached, when, and how the seeds spread."""

from __future__ import annotations

import math
from functools import cached_property

from distbench.core import stats
from distbench.core.config import CellSpec


class TargetResult:
    """What :class:`~distbench.storage.results.CellResult` knows of time to target (its
    ``ok`` records and ``spec``)."""

    @property
    def is_target(self) -> bool:
        return self.spec.is_target

    @property
    def target(self) -> dict:
        """The target's settings and the first process's outcome ({} for other cells)."""
        return self.first.get("target") or {}

    @cached_property
    def times_to_target(self) -> list[float]:
        """Each measured seed's training seconds to the target; ``inf``: not reached (censored)."""
        return self._by_seed("time_s")

    @cached_property
    def steps_to_target(self) -> list[float]:
        return self._by_seed("steps")

    def _by_seed(self, key: str) -> list[float]:
        """``key`` of the target's outcome per training seed, the unit of a time-to-target
        cell: the median over the seed's processes (``--repeats``), which train the same
        curve and differ only in their step times (9 processes of 3 seeds had read "9 of 9"
        with the interval's coverage of 9 seeds)."""
        seeds: dict[int, list[float]] = {}
        for r in self.ok:
            if r.get("target"):
                value = r["target"][key] if r["target"]["reached"] else math.inf
                seeds.setdefault(CellSpec.from_dict(r["config"]).training_seed, []).append(value)
        return [stats.censored_median(values) for values in seeds.values()]

    @property
    def reached(self) -> int:
        """How many seeds reached the target."""
        return sum(1 for t in self.times_to_target if math.isfinite(t))

    @cached_property
    def time_to_target(self) -> float | None:
        """The median over seeds of the time to target (``inf``: half or more never reached it)."""
        return stats.censored_median(self.times_to_target) if self.times_to_target else None

    @cached_property
    def median_steps_to_target(self) -> float | None:
        return stats.censored_median(self.steps_to_target) if self.steps_to_target else None

    @cached_property
    def time_to_target_interval(self) -> tuple[float, float, float] | None:
        """(low, high, coverage): order statistics of the seeds around the median
        (:func:`stats.median_order_interval`); ``inf`` bounds are seeds that never reached it."""
        return stats.median_order_interval(self.times_to_target) if self.times_to_target else None

    @property
    def first_step_s(self) -> float | None:
        """The median over the cell's processes of the first step's seconds (tracing,
        compilation), which the time to target includes."""
        firsts = [r["steps"]["cold_start_s"] for r in self.ok if r.get("target") and "cold_start_s" in r.get("steps", {})]
        return stats.percentile(firsts, 50) if firsts else None

    @property
    def eval_s(self) -> float | None:
        """Mean evaluation seconds per seed (kept apart from the time to target)."""
        values = [r["target"]["eval_s"] for r in self.ok if r.get("target")]
        return stats.mean(values) if values else None

    @property
    def curves(self) -> list[list[dict]]:
        """Each seed's curve: (step, train_s, value) at every evaluation (its first process's)."""
        seeds: dict[int, list[dict]] = {}
        for r in self.ok:
            if r.get("target"):
                seeds.setdefault(CellSpec.from_dict(r["config"]).training_seed, r["target"]["curve"])
        return list(seeds.values())
