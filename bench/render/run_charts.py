"""Charts of one run: step time per strategy and loop, throughput against replicas,
accuracy against speed, and the test metric against training time (time to target).

Each function returns a matplotlib figure (None when the run has nothing to draw) with
tooltips by artist id; :mod:`distbench.render.figures` writes it as PNG or SVG.
"""

from __future__ import annotations

from distbench.core import targets
from distbench.render import units
from distbench.render.figures import colour, marker, plain, pyplot
from distbench.storage.results import CellResult
from distbench.storage.stored_run import StoredRun


def measured(run: StoredRun, training: bool = True) -> list[CellResult]:
    """The run's measured cells (every repeat of each), training cells only by default."""
    return [r for r in run.results.values() if r.measured and (r.spec.loop or not training)]


def _workload_panels(results: list[CellResult], size: tuple[float, float], rows: int = 1):
    """A figure with one panel per workload: (figure, [(axes, workload, its cells)])."""
    names = list(dict.fromkeys(r.spec.workload for r in results))
    cols = -(-len(names) // rows)
    fig, axes = pyplot().subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[len(names):]:
        ax.set_visible(False)
    return fig, [(ax, w, [r for r in results if r.spec.workload == w]) for ax, w in zip(flat, names)]


def step_time(run: StoredRun):
    """Grouped bars: median step time over processes per strategy, one bar per loop, one
    panel per workload; error bars: the median's 95% interval."""
    results = [r for r in measured(run) if not r.spec.is_replicate and not r.is_target]
    if not results:
        return None
    fig, panels = _workload_panels(results, (6, 4))
    for ax, workload, rows in panels:
        strategies = list(dict.fromkeys(r.spec.strategy for r in rows))
        labels = list(dict.fromkeys(r.spec.label for r in rows))
        width = 0.8 / len(labels)
        for i, label in enumerate(labels):
            bars = [(j + i * width, r) for j, s in enumerate(strategies) for r in rows
                    if r.spec.strategy == s and r.spec.label == label]
            ys = [r.median * 1e3 for _, r in bars]
            errs = [[(r.median - r.interval[0]) * 1e3 for _, r in bars],
                    [(r.interval[1] - r.median) * 1e3 for _, r in bars]]
            drawn = ax.bar([x for x, _ in bars], ys, width, label=label, yerr=errs, capsize=3)
            _mark_partly_failed(ax, bars, drawn.patches)
        ax.set_xticks([j + width * (len(labels) - 1) / 2 for j in range(len(strategies))], strategies, fontsize=8)
        ax.set_ylabel("ms per step")
        ax.legend(title="loop", fontsize=8)
        partly = " (hatched: some processes failed)" if any(r.failed_repeats for r in rows) else ""
        ax.set_title(f"{plain(workload)}: median step time (bars: 95% interval){partly}", fontsize=10)
    fig.tight_layout()
    return fig, {}


def _mark_partly_failed(ax, bars: list, patches) -> None:
    """A bar of a cell measured on some of its processes is hatched and says how many
    (``2 of 3``), as its table row does: it is not drawn like a whole cell."""
    for (x, r), patch in zip(bars, patches):
        if r.failed_repeats:
            patch.set_hatch("//")
            ax.annotate(f"{len(r.ok)} of {len(r.repeats)}", (x, patch.get_height()), ha="center", va="bottom",
                        fontsize=7, xytext=(0, 2), textcoords="offset points")


def throughput(run: StoredRun):
    """Examples/s (at the median over processes) against replicas, one panel per workload;
    colour by strategy, marker by loop, hollow for shared hardware (virtual devices, local workers)."""
    results = [r for r in measured(run) if r.throughput is not None and not r.spec.is_replicate and not r.is_target]
    if not results:
        return None
    fig, panels = _workload_panels(results, (4.5, 3.5))
    tips = {}
    for ax, workload, rows in panels:
        for k, r in enumerate(rows):
            gid = f"tp-{workload}-{k}"
            ax.scatter([r.replicas], [r.throughput], marker=marker(r.spec.loop), s=45, gid=gid,
                       facecolors="none" if r.shared_hardware else colour(r.spec.strategy),
                       edgecolors=colour(r.spec.strategy))
            tips[gid] = f"{r.id}: {r.throughput:.0f} examples/s on {r.replicas} replica(s)"
        ax.set_xticks(sorted({r.replicas for r in rows}))
        ax.set_xlabel("replicas (hollow: sharing one machine)", fontsize=8)
        ax.set_ylabel("global examples per second", fontsize=8)
        ax.set_title(f"{plain(workload)}: throughput", fontsize=10)
    _legends(fig, results, hollow="shared")
    return fig, tips


def accuracy(run: StoredRun):
    """Each cell's guard metric (mean over processes) against its median step time, one panel
    per workload (its metric), colour by strategy and marker by loop (a legend, no labels
    on the points), the guard's accepted band shaded."""
    results = [r for r in measured(run) if r.guard_value is not None and not r.is_target and not r.spec.is_replicate]
    if not results:
        return None
    fig, panels = _workload_panels(results, (4.5, 3.5))
    tips = {}
    for ax, workload, rows in panels:
        band = next((r.guard["reference"] for r in rows if (r.guard or {}).get("reference")), None)
        if band and band.get("low") is not None:   # a share's band ends at 0 and 1, as the tables clip it
            share = any(word in (rows[0].guard_metric or "").lower() for word in targets.SHARES)
            low, high = (max(band["low"], 0.0), min(band["high"], 1.0)) if share else (band["low"], band["high"])
            ax.axhspan(low, high, color="0.85", zorder=0)
        for k, r in enumerate(rows):
            gid = f"acc-{workload}-{k}"
            ax.scatter([r.median * 1e3], [r.guard_value], marker=marker(r.spec.loop), s=40, gid=gid, zorder=3,
                       facecolors="none" if r.spec.keras == "tf_keras" else colour(r.spec.strategy),
                       edgecolors=colour(r.spec.strategy))
            tips[gid] = (f"{r.id}: {r.guard_metric} {units.metric(r.guard_value)}, median step "
                         f"{units.ms(r.median)} ms")
        better = "down" if rows[0].guard_direction == "lower" else "up"
        steps = [r.median for r in rows]
        if max(steps) > 4 * min(steps):   # a few slow cells would squeeze the rest into a corner
            ax.set_xscale("log")
            # Plain numbers, few of them: the minor ticks' 3x10^0, 4x10^0 ... had run into each other.
            from matplotlib import ticker   # with the figure's matplotlib, not at import

            ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.margins(x=0.08, y=0.08)   # a point at an edge had been cut in half
        ax.set_xlabel("median step time (ms; log scale where wide): left is faster", fontsize=8)
        ax.set_ylabel(plain(f"test {rows[0].guard_metric}: {better} is better"), fontsize=8)
        ax.set_title(plain(workload) + (" (grey: the guard's band)" if band else ""), fontsize=10)
    _legends(fig, results)
    return fig, tips


def _legends(fig, results: list[CellResult], hollow: str = "keras") -> None:
    """The legend under the panels: colour = strategy, marker = loop, and what hollow means."""
    from matplotlib.lines import Line2D

    strategies = list(dict.fromkeys(r.spec.strategy for r in results))
    loops = list(dict.fromkeys(r.spec.loop for r in results))
    handles = [Line2D([], [], color=colour(s), marker="o", linestyle="", label=s) for s in strategies]
    handles += [Line2D([], [], color="0.3", marker=marker(lp), linestyle="", label=lp or "-") for lp in loops]
    hollows = [r.spec.keras == "tf_keras" if hollow == "keras" else r.shared_hardware for r in results]
    if any(hollows):
        handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="none", linestyle="",
                              label="hollow: tf_keras" if hollow == "keras" else "hollow: shared hardware"))
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)


def time_to_target(run: StoredRun):
    """The test metric against training wall time (evaluations excluded), one panel per
    workload, one colour per strategy and loop, one line per training seed; the target
    as a dashed line."""
    results = [r for r in measured(run) if r.is_target and r.curves]
    if not results:
        return None
    fig, panels = _workload_panels(results, (6, 4))
    for ax, workload, rows in panels:
        for i, r in enumerate(rows):
            for k, curve in enumerate(r.curves):
                ax.plot([p["train_s"] for p in curve], [p["value"] for p in curve], color=f"C{i}", alpha=0.7,
                        label=f"{r.spec.strategy}/{r.spec.loop}" if k == 0 else None)
        goal = rows[0].target
        ax.axhline(goal["value"], color="black", linestyle="--", linewidth=1, label=f"target {goal['value']:g}")
        ax.set_xlabel("training wall time, s (evaluations excluded)", fontsize=8)
        ax.set_ylabel(f"test {goal['metric']}", fontsize=8)
        ax.set_title(f"{plain(workload)}: time to target (one line per seed)", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig, {}
