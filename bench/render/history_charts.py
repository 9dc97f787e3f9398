"""Charts across runs: one small trend chart per matrix cell, and machines side by side.

A trend chart: x is the run's date (a few ticks), y the cell's median step in ms from 0;
the 95% interval of each run's median as a band, the fitted level as flat segments, each
step labelled with its size (red, with a red triangle, where ``compare``'s judge calls it
slower; grey else), a dotted line where the cell became another measurement, and on every
point a tooltip with its run, date and commit.
"""

from __future__ import annotations

import datetime as dt
import re

from distbench.analysis.machines import CellRow, MachineView
from distbench.analysis.trends import Trend
from distbench.render import units
from distbench.render.figures import plain, pyplot

LEVEL, BAND, REGRESSION, STEP = "C1", "C0", "#c0392b", "0.45"


def point_tip(point) -> str:
    """A point's tooltip: run, date, commit, median and interval, processes."""
    r = point.result
    text = (f"run {point.run:04d}, {point.when:%Y-%m-%d %H:%M} UTC, commit {point.commit}: {units.ms(r.median)} ms "
            f"[{units.ms_range(r.interval)}], {r.processes} processes")
    return text if point.whole else f"{text}; {r.shortfall}: not fitted"


def trend(trend: Trend, name: str):
    """The small chart of one cell (``name``: unique in the page, for its ids)."""
    import matplotlib.dates as mdates

    fig, ax = pyplot().subplots(figsize=(4.4, 2.5))
    for stretch in _stretches(trend):   # a line and a band per comparable stretch: none across a break
        xs = [p.when for p in stretch]
        ax.fill_between(xs, [p.result.interval[0] * 1e3 for p in stretch],
                        [p.result.interval[1] * 1e3 for p in stretch], color=BAND, alpha=0.18, linewidth=0)
        ax.plot(xs, [p.result.median * 1e3 for p in stretch], color=BAND, linewidth=0.8)
    tips = {}
    for k, p in enumerate(trend.points):
        gid = f"{name}-p{k}"
        style = dict(marker="o", markersize=3.5, color=BAND) if p.whole else dict(marker="x", markersize=5, color=STEP)
        ax.plot([p.when], [p.result.median * 1e3], linestyle="", gid=gid, **style)
        tips[gid] = point_tip(p)
    _levels(ax, trend)
    _steps(ax, trend, name, tips)
    for k, b in enumerate(trend.breaks):
        gid = f"{name}-b{k}"
        ax.axvline(b.after.when, color=STEP, linestyle=":", linewidth=1, gid=gid)
        tips[gid] = f"another measurement from run {b.after.run:04d}: " + "; ".join(b.why)
    first, last = min(p.when for p in trend.points), max(p.when for p in trend.points)
    if last - first < dt.timedelta(hours=1):   # one run, or several within the hour: room either side
        ax.set_xlim(first - dt.timedelta(hours=1), last + dt.timedelta(hours=1))
    locator = mdates.AutoDateLocator(minticks=2, maxticks=4)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.tick_params(labelsize=7)
    ax.set_ylim(bottom=0, top=max(p.result.interval[1] for p in trend.points) * 1e3 * 1.25)
    ax.set_ylabel("ms per step", fontsize=7)
    ax.set_title(plain(trend.cell[len(trend.workload) + 1:]), fontsize=9)
    fig.tight_layout()
    return fig, tips


def _stretches(trend: Trend) -> list[list]:
    """The whole points, cut where the cell became another measurement."""
    starts = {id(b.after) for b in trend.breaks}
    stretches: list[list] = []
    for p in trend.points:
        if p.whole:
            if not stretches or id(p) in starts:
                stretches.append([])
            stretches[-1].append(p)
    return stretches


def break_text(cut) -> str:
    """``run 0071: workload code``: where, and what changed (the values are in the chart's tooltip)."""
    return f"run {cut.after.run:04d}: " + ", ".join(re.sub(r" \S+ -> \S+$", "", why) for why in cut.why)


def _levels(ax, trend: Trend) -> None:
    """The fitted level, one horizontal segment per stretch of equal level."""
    runs = [p for p in trend.points if p.index in trend.levels]
    start = 0
    for k in range(1, len(runs) + 1):
        if k == len(runs) or trend.levels[runs[k].index] != trend.levels[runs[start].index]:
            level = trend.levels[runs[start].index] * 1e3
            ax.plot([runs[start].when, runs[k - 1].when], [level, level], color=LEVEL, linewidth=1.6)
            start = k


def _steps(ax, trend: Trend, name: str, tips: dict) -> None:
    for k, s in enumerate(trend.steps):
        colour = REGRESSION if s.regression else STEP
        y = max(trend.levels[s.before.index], trend.levels[s.after.index]) * 1e3
        gid = f"{name}-s{k}"
        ax.annotate(units.percent_change(s.ratio), (s.after.when, y), xytext=(0, 6), textcoords="offset points",
                    ha="center", fontsize=7, color=colour, fontweight="bold" if s.regression else "normal", gid=gid)
        if s.regression:
            ax.plot([s.after.when], [s.after.result.median * 1e3], marker="^", markersize=7, color=REGRESSION,
                    linestyle="")
        tips[gid] = step_text(s)


def step_text(step) -> str:
    """``+31.0% from run 0012 (abc12345) to run 0013 (def67890): compare says slower, B/A 1.31 [1.12, 1.53]``."""
    return (f"{units.percent_change(step.ratio)} from run {step.before.run:04d} ({step.before.commit}) to run "
            f"{step.after.run:04d} ({step.after.commit}): compare says {step.verdict}, B/A "
            f"{units.ratio(step.after.result.median / step.before.result.median, step.interval)}")


def machines(view: MachineView, rows: list[CellRow], workload: str, name: str):
    """One workload's cells on each machine: the latest median with its run's 95% interval,
    one colour per machine (the reference first)."""
    fig, ax = pyplot().subplots(figsize=(7, 0.42 * len(rows) + 1.3))
    tips, offsets = {}, {m: (i - (len(view.machines) - 1) / 2) * 0.22 for i, m in enumerate(view.machines)}
    for y, row in enumerate(rows):
        for i, m in enumerate(view.machines):
            entry = row.latest.get(m)
            if entry is None:
                continue
            r, gid = entry.result, f"{name}-{y}-{i}"
            drawn = ax.errorbar([r.median * 1e3], [y + offsets[m]], xerr=[[(r.median - r.interval[0]) * 1e3],
                                [(r.interval[1] - r.median) * 1e3]], fmt="o", color=f"C{i}", markersize=4, capsize=2,
                                label=m if y == 0 or all(m not in rr.latest for rr in rows[:y]) else None)
            drawn[0].set_gid(gid)   # the marker only (errorbar would give its bars and caps the same id)
            tips[gid] = f"{m}, run {entry.run.number:04d}, commit {entry.run.commit}: {units.ms(r.median)} ms"
    ax.set_yticks(range(len(rows)), [plain(row.cell[len(workload) + 1:]) for row in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(left=0)
    ax.set_xlabel(f"{plain(workload)}: latest median step, ms (bars: its run's 95% interval)", fontsize=8)
    height = fig.get_figheight()
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / height))
    fig.legend(fontsize=7, loc="upper center", ncol=len(view.machines), frameon=False)
    return fig, tips
