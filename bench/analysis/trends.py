"""Each matrix cell's history on one machine: its points, the steps in it, and which of
those ``compare`` would call a regression.

A matrix cell is what a plain run measures: not an accuracy-guard replicate (``-init1``),
not a side of an interleaved A/B run (``@A``), not a time-to-target cell (their own view).
A point is one stored run's measurement of the cell. Points of different measurements
(configuration, data or workload code differ, as ``compare`` decides) are not one series:
the history is cut there, and steps are sought within each comparable stretch only.
A step is judged as ``distbench compare`` judges its two runs, with the noise ``compare``
takes for each (the machine's runs that measured the cell as that run did): it is a
regression only where ``compare`` says ``slower``. A stretch is fitted with the noise of
its own runs.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Callable

from distbench.analysis.compare import DEFAULT_THRESHOLD, Noise, compare_cell, history_noise
from distbench.analysis.identity import differences
from distbench.analysis.steps import segments
from distbench.storage.results import CellResult
from distbench.storage.stored_run import StoredRun


@dataclass(frozen=True)
class Point:
    """One run's measurement of a cell."""

    run: int                 # its number, as shown
    when: dt.datetime
    commit: str
    result: CellResult
    index: int = 0           # its place in the history: two files of a folder may share a number

    @property
    def whole(self) -> bool:
        """Every process of the cell was measured (a partly crashed cell is shown, never fitted)."""
        return self.result.whole


@dataclass(frozen=True)
class Step:
    """A change of level between ``before`` and ``after`` (consecutive fitted points)."""

    before: Point
    after: Point
    ratio: float       # the level after over the level before: > 1 is slower
    verdict: str       # compare's on the two runs: slower, faster, same or undecided
    interval: tuple[float, float] | None

    @property
    def regression(self) -> bool:
        return self.verdict == "slower"


@dataclass(frozen=True)
class Break:
    """Where the cell became another measurement (``compare`` would refuse to compare)."""

    before: Point
    after: Point
    why: tuple[str, ...]


@dataclass
class Trend:
    """A matrix cell's history: points in run order, fitted level per whole point, steps, breaks."""

    cell: str
    workload: str
    points: list[Point]
    noise: Noise | None
    levels: dict[int, float] = field(default_factory=dict)   # a point's index -> fitted level (seconds)
    steps: list[Step] = field(default_factory=list)
    breaks: list[Break] = field(default_factory=list)

    @property
    def regressions(self) -> list[Step]:
        return [s for s in self.steps if s.regression]


def is_matrix_cell(result: CellResult) -> bool:
    """A plain run's cell (see the module's docstring)."""
    return "@" not in result.id and not result.spec.is_replicate and not result.is_target


def trends(history: list[StoredRun], threshold: float = DEFAULT_THRESHOLD) -> list[Trend]:
    """One trend per matrix cell measured in ``history`` (a machine's runs, in run order),
    grouped by workload in order of first appearance."""
    noise = _noise_like(history)
    found: dict[str, Trend] = {}
    for index, run in enumerate(history):
        if run.interrupted:
            continue
        for cell, result in run.results.items():
            if result.measured and is_matrix_cell(result):
                trend = found.setdefault(cell, Trend(cell, result.spec.workload, [], None))
                trend.points.append(Point(run.number, run.stored_at, run.commit, result, index))
    for trend in found.values():
        _fit(trend, threshold, noise)
    order = list(dict.fromkeys(t.workload for t in found.values()))
    return sorted(found.values(), key=lambda t: order.index(t.workload))


NoiseOf = Callable[..., Noise | None]


def _noise_like(history: list[StoredRun]) -> NoiseOf:
    """(a run's index in ``history``, cell, the indices of the runs compared) -> the cell's
    noise as ``compare`` takes it for that run (from the runs that measured the cell as it
    did, the runs compared left out), each computed once. Indices, not numbers: a folder
    merged from two clones holds two runs of one number, and one had stood for both."""
    cache: dict[tuple[int, tuple[int, ...]], dict[str, Noise]] = {}

    def of(index: int, cell: str, compared: tuple[int, ...] = ()) -> Noise | None:
        if (index, compared) not in cache:
            cache[index, compared] = history_noise(history, like=history[index],
                                                   leave_out=tuple(history[k] for k in compared))
        return cache[index, compared].get(cell)
    return of


def _fit(trend: Trend, threshold: float, noise: NoiseOf) -> None:
    """Levels and steps within each comparable stretch of the whole points; breaks between them."""
    whole = [p for p in trend.points if p.whole]
    stretches: list[list[Point]] = []
    for point in whole:
        why = tuple(differences(stretches[-1][-1].result, point.result)) if stretches else ()
        if not stretches or why:
            if stretches:
                trend.breaks.append(Break(stretches[-1][-1], point, why))
            stretches.append([])
        stretches[-1].append(point)
    for stretch in stretches:
        _fit_stretch(trend, stretch, threshold, noise)


def _fit_stretch(trend: Trend, stretch: list[Point], threshold: float, noise: NoiseOf) -> None:
    # As its latest run measured the cell, else as the latest run that has a noise: a run over
    # another number of processes (--repeats 1 among runs of 3) has too few runs like it, and
    # had left the whole stretch unfitted, its regressions unreported.
    own = next((found for found in (noise(p.index, trend.cell) for p in reversed(stretch)) if found), None)
    if own is None:
        return   # fewer than 3 runs measured it so: no noise to fit or judge with (compare says undecided)
    trend.noise = own   # the caption's: the latest stretch fitted
    logs = [math.log(p.result.estimate) for p in stretch]
    fitted = segments(logs, own.sd)
    for segment in fitted:
        for p in stretch[segment.start:segment.stop]:
            trend.levels[p.index] = math.exp(segment.level)
    for left, right in zip(fitted, fitted[1:]):
        before, after = stretch[left.stop - 1], stretch[right.start]
        compared = (before.index, after.index)
        judged = compare_cell(before.result, after.result, threshold, noise(before.index, trend.cell, compared),
                              noise(after.index, trend.cell, compared))
        trend.steps.append(Step(before, after, math.exp(right.level - left.level), judged.verdict, judged.ratio_ci))
