"""A Markdown report with PNG charts from stored runs (matplotlib, no display needed).

Charts: step time per strategy and loop for each workload; throughput against replicas;
accuracy against speed; the test metric against training time for time-to-target cells;
and, across one machine's history, each cell's median step time
run by run, with regressions against the previous run marked.
"""

from __future__ import annotations

import os
from pathlib import Path

from distbench.analysis.compare import DEFAULT_THRESHOLD, compare_runs, history_noise
from distbench.core.errors import UserError
from distbench.core.fileio import atomic_write_text
from distbench.render import overhead_lines, run_table, tables, target_table
from distbench.storage.files import StoredRun
from distbench.storage.results import CellResult


def _measured(run: StoredRun, training: bool = True) -> list[CellResult]:
    """The run's measured cells (every repeat of each), training cells only by default."""
    return [r for r in run.results.values() if r.measured and (r.spec.loop or not training)]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, plt, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def step_time_chart(run: StoredRun, path: Path) -> bool:
    """Grouped bars: median step time over processes per strategy, one bar per loop, one panel
    per workload; error bars: the median's 95% interval."""
    results = [r for r in _measured(run) if not r.spec.is_replicate]
    if not results:
        return False
    plt, fig, panels = _workload_panels(results, (6, 4))
    for ax, workload, rows in panels:
        _step_time_panel(ax, rows)
        ax.set_title(f"{workload}: median step time (bars: 95% interval)")
    _save(fig, plt, path)
    return True


def _workload_panels(results: list[CellResult], size: tuple[float, float]):
    """A figure with one panel per workload: (pyplot, figure, [(axes, workload, its cells)])."""
    plt = _pyplot()
    names = list(dict.fromkeys(r.spec.workload for r in results))
    fig, axes = plt.subplots(1, len(names), figsize=(size[0] * len(names), size[1]), squeeze=False)
    return plt, fig, [(ax, w, [r for r in results if r.spec.workload == w]) for ax, w in zip(axes[0], names)]


def _step_time_panel(ax, results: list[CellResult]) -> None:
    strategies = list(dict.fromkeys(r.spec.strategy for r in results))
    labels = list(dict.fromkeys(r.spec.label for r in results))
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        bars = [(j + i * width, r) for j, s in enumerate(strategies) for r in results
                if r.spec.strategy == s and r.spec.label == label]
        ys = [r.median * 1e3 for _, r in bars]
        errs = [[(r.median - r.interval[0]) * 1e3 for _, r in bars], [(r.interval[1] - r.median) * 1e3 for _, r in bars]]
        ax.bar([x for x, _ in bars], ys, width, label=label, yerr=errs, capsize=3)
    ax.set_xticks([j + width * (len(labels) - 1) / 2 for j in range(len(strategies))], strategies)
    ax.set_ylabel("ms per step")
    ax.legend(title="loop")


def throughput_chart(run: StoredRun, path: Path) -> bool:
    """Examples/s (at the median over processes) against replicas; hollow markers for
    shared hardware (virtual devices, local workers)."""
    results = [r for r in _measured(run) if r.throughput is not None and not r.spec.is_replicate]
    if not results:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        shared = r.shared_hardware
        ax.scatter(r.replicas, r.throughput, facecolors="none" if shared else None,
                   edgecolors="C0" if shared else None, s=60)
        ax.annotate(f"{r.spec.workload}/{r.spec.label}/{r.spec.strategy}", (r.replicas, r.throughput), fontsize=7,
                    xytext=(4, 2), textcoords="offset points")
    ax.set_xlabel("replicas (hollow: virtual devices or local workers sharing one machine)")
    ax.set_ylabel("global examples per second")
    ax.set_title("Throughput against replicas")
    ax.set_xticks(sorted({r.replicas for r in results}))
    _save(fig, plt, path)
    return True


def accuracy_chart(run: StoredRun, path: Path) -> bool:
    """Each cell's guard metric (mean over processes) against its median step time."""
    results = [r for r in _measured(run) if r.guard_value is not None and not r.is_target]
    if not results:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, workload in enumerate(dict.fromkeys(r.spec.workload for r in results)):
        rows = [r for r in results if r.spec.workload == workload]
        ax.scatter([r.median * 1e3 for r in rows], [r.guard_value for r in rows],
                   label=f"{workload} ({rows[0].guard_metric})", color=f"C{i}")
        for r in rows:
            ax.annotate(f"{r.spec.strategy}/{r.spec.label}", (r.median * 1e3, r.guard_value),
                        fontsize=7, xytext=(4, 2), textcoords="offset points")
    ax.set_xlabel("median step time (ms): left is faster")
    ax.set_ylabel("test metric (the accuracy guard's): up is better")
    ax.set_title("Accuracy against speed")
    ax.legend()
    _save(fig, plt, path)
    return True


def target_chart(run: StoredRun, path: Path) -> bool:
    """The test metric against training wall time (evaluations excluded), one panel per
    workload, one colour per strategy and loop, one line per training seed; the target
    as a dashed line."""
    results = [r for r in _measured(run) if r.is_target and r.curves]
    if not results:
        return False
    plt, fig, panels = _workload_panels(results, (6.5, 4.5))
    for ax, workload, rows in panels:
        for i, r in enumerate(rows):
            for k, curve in enumerate(r.curves):
                ax.plot([p["train_s"] for p in curve], [p["value"] for p in curve], color=f"C{i}", alpha=0.7,
                        label=f"{r.spec.strategy}/{r.spec.loop}" if k == 0 else None)
        goal = rows[0].target
        ax.axhline(goal["value"], color="black", linestyle="--", linewidth=1, label=f"target {goal['value']:g}")
        ax.set_xlabel("training wall time, s (evaluations excluded)")
        ax.set_ylabel(f"test {goal['metric']}")
        ax.set_title(f"{workload}: time to target (one line per seed)")
        ax.legend(fontsize=8)
    _save(fig, plt, path)
    return True


def trend_chart(history: list[StoredRun], path: Path, threshold: float) -> list[str]:
    """Per workload, each cell's median step time across runs; red x where a run regressed."""
    if len(history) < 2:
        return []
    plt = _pyplot()
    series = _trend_series(history)
    names = list(dict.fromkeys(spec.workload for spec, _ in series.values()))
    # Each panel tall enough for its legend (one line per cell), 20 distinct colours.
    heights = [max(3.2, 0.16 * sum(spec.workload == n for spec, _ in series.values())) for n in names]
    fig, axes = plt.subplots(len(names), 1, figsize=(9, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    panel = {name: ax for name, ax in zip(names, axes[:, 0])}
    colours = plt.get_cmap("tab20").colors
    drawn = dict.fromkeys(names, 0)   # lines per panel, for colour and style
    for cell, (spec, points) in series.items():
        k, drawn[spec.workload] = drawn[spec.workload], drawn[spec.workload] + 1
        panel[spec.workload].plot([x for x, _ in points], [y for _, y in points], marker="o", color=colours[k % 20],
                                  linestyle="-" if k < 20 else "--", label=cell[len(spec.workload) + 1:])
    regressions = _mark_regressions(history, panel, threshold)
    for name, ax in panel.items():
        ax.set_title(f"{name}: median step time per run (red x: slower than the run before, beyond this "
                     "history's between-run noise)",
                     fontsize=9)
        ax.set_xticks([run.number for run in history])
        ax.set_ylim(bottom=0)
        ax.set_ylabel("ms per step")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    axes[-1, 0].set_xlabel("run number")
    _save(fig, plt, path)
    return regressions


def _trend_series(history: list[StoredRun]) -> dict[str, tuple]:
    """Cell id -> (its spec, [(run number, median ms)]) over the runs where it was measured."""
    series: dict[str, tuple] = {}
    for run in history:
        for cell, r in run.results.items():
            if r.measured:
                series.setdefault(cell, (r.spec, []))[1].append((run.number, r.median * 1e3))
    return series


def _mark_regressions(history: list[StoredRun], panel: dict, threshold: float) -> list[str]:
    """Runs slower than the run before, by the check's own verdict (this history's noise)."""
    noise = history_noise(history)
    regressions: list[str] = []
    for before, after in zip(history, history[1:]):
        try:
            comparison = compare_runs(before, after, threshold, noise_a=noise, noise_b=noise)
        except UserError:
            continue
        for c in comparison.compared:
            if c.verdict == "slower":
                panel[c.b.spec.workload].scatter([after.number], [c.median_b * 1e3], marker="x", s=120,
                                                 color="red", zorder=5)
                regressions.append(f"run {after.number:04d}: {c.cell} x{c.ratio:.2f} vs run {before.number:04d}")
    return regressions


def write_report(run: StoredRun, history: list[StoredRun], out_dir: str | os.PathLike,
                 threshold: float = DEFAULT_THRESHOLD) -> Path:
    """Writes ``report.md`` and its PNG charts into ``out_dir``; returns the Markdown path."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"Cannot create report folder {out}: {exc.strerror}.") from None
    lines = (_heading(run) + _target_section(run) + _guard_section(run) + _overhead_section(run)
             + _scaling_section(run) + _charts_section(run, out) + _history_section(history, out, threshold))
    path = out / "report.md"
    atomic_write_text(str(path), "\n".join(lines))
    return path


def _heading(run: StoredRun) -> list[str]:
    info = run.machine_info.get("distbench", {})
    lines = [
        f"# distbench report: {run.label}",
        "",
        f"Run {run.number:04d} of machine `{run.machine_id}`, {run.data.get('datetime', '?')}, commit `{run.commit}`.",
        f"TensorFlow {info.get('tensorflow')}, Keras {info.get('keras')}, {info.get('cpu_count')} CPUs "
        f"({info.get('cpu_model')}), GPUs: {', '.join(info.get('gpus') or []) or 'none'}.",
        "",
    ]
    if run.interrupted:
        lines += [f"**{run_table.interrupted_line(run.results)}**", ""]
    if run_table.peak_line(run.peak):
        lines += [run_table.peak_line(run.peak), ""]
    return lines + ["## Cells", "", run_table.render(run.results, "markdown"), ""]


def _target_section(run: StoredRun) -> list[str]:
    rows = target_table.target_rows(run.results)
    if not rows:
        return []
    return ["## Time to target", "", target_table.target_note(run.results), "",
            tables.render_rows(target_table.TARGET_HEADERS, rows, "markdown"), ""]


def _guard_section(run: StoredRun) -> list[str]:
    flags = run_table.guard_lines(run.results)
    return [
        "## Accuracy guard",
        "",
        "Each cell's test metric (the workload's: accuracy, or AUC for multibranch) against the reference cell "
        f"(`default` strategy, `fit`) run with several training seeds: {run_table.guard_rule()}.",
        "",
        *([f"- **{line}**" for line in flags] or ["No cell is outside its reference's spread."]),
        "",
    ]


def _overhead_section(run: StoredRun) -> list[str]:
    if not run.overhead:
        return []
    return [
        "## Harness overhead",
        "",
        "The harness's own cell (default strategy, custom loop) against a bare TensorFlow loop of the same "
        "workload in its own process, in pairs of processes that take turns step by step; and fit's wall time "
        "with the harness's per-step timing callback against without it, in interleaved pairs of calls in one "
        f"process. Target: at most {overhead_lines.overhead_target()}.",
        "",
        *[f"- {line}" for r in run.overhead for line in overhead_lines.overhead_lines(r)],
        "",
    ]


def _scaling_section(run: StoredRun) -> list[str]:
    scaling_table = run_table.render_scaling(run.results, "markdown")
    if not scaling_table:
        return []
    return [
        "## Scaling efficiency",
        "",
        "throughput(N replicas) / (N x throughput of the one-replica `default` cell), per workload and loop. "
        "Strong: global batch fixed; weak: per-replica batch fixed. Rows marked SHARED ran on virtual "
        "devices or local workers that share one machine's hardware: not real scaling.",
        "",
        scaling_table,
        "",
    ]


def _charts_section(run: StoredRun, out: Path) -> list[str]:
    charts = [
        ("step_time.png", "Step time per strategy and loop", step_time_chart),
        ("throughput.png", "Throughput against replicas", throughput_chart),
        ("accuracy.png", "Accuracy against speed", accuracy_chart),
        ("time_to_target.png", "Test metric against training time", target_chart),
    ]
    lines = []
    for name, title, chart in charts:
        if chart(run, out / name):
            lines += [f"## {title}", "", f"![{title}]({name})", ""]
    return lines


def _history_section(history: list[StoredRun], out: Path, threshold: float) -> list[str]:
    regressions = trend_chart(history, out / "trend.png", threshold)
    if len(history) < 2:
        return []
    lines = [f"## History ({len(history)} runs of this machine)", "", "![History](trend.png)", ""]
    lines += [f"- {r}" for r in regressions] or [
        "No run was slower than the run before it beyond this history's between-run noise (cells in fewer "
        "than 3 runs cannot be judged)."]
    return lines + [""]
