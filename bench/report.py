"""A Markdown report with PNG charts from stored runs (matplotlib, no display needed).

Charts: step time per strategy and loop for each workload; throughput against replicas;
accuracy against speed; and, across one machine's history, each cell's median step time
run by run, with regressions against the previous run marked.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench import stats, tables
from bench.records import ok, per_process_samples
from bench.compare import DEFAULT_ALPHA, DEFAULT_THRESHOLD, compare_runs
from bench.errors import UserError
from bench.storage import StoredRun


def _ok_records(run: StoredRun) -> list[dict]:
    return [r for repeats in run.cells().values() for r in ok(repeats[:1])]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def step_time_chart(run: StoredRun, path: Path) -> bool:
    """Grouped bars: median step time (ms) per strategy, one bar per loop, one panel per workload."""
    records = [r for r in _ok_records(run) if r["config"].get("loop")]
    if not records:
        return False
    plt = _pyplot()
    names = list(dict.fromkeys(r["config"]["workload"] for r in records))
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4), squeeze=False)
    for ax, workload in zip(axes[0], names):
        rows = [r for r in records if r["config"]["workload"] == workload]
        strategies = list(dict.fromkeys(r["config"]["strategy"] for r in rows))
        loops = list(dict.fromkeys(r["config"]["loop"] for r in rows))
        width = 0.8 / len(loops)
        for i, loop in enumerate(loops):
            xs, ys, errs = [], [], []
            for j, strategy in enumerate(strategies):
                match = [r for r in rows if r["config"]["strategy"] == strategy and r["config"]["loop"] == loop]
                if match:
                    st = match[0]["step_time"]
                    xs.append(j + i * width)
                    ys.append(st["median"] * 1e3)
                    errs.append([[(st["median"] - st["p10"]) * 1e3], [(st["p90"] - st["median"]) * 1e3]])
            lower = [e[0][0] for e in errs]
            upper = [e[1][0] for e in errs]
            ax.bar(xs, ys, width, label=loop, yerr=[lower, upper], capsize=3)
        ax.set_xticks([j + width * (len(loops) - 1) / 2 for j in range(len(strategies))], strategies)
        ax.set_title(f"{workload}: median step time (bars: p10-p90)")
        ax.set_ylabel("ms per step")
        ax.legend(title="loop")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def throughput_chart(run: StoredRun, path: Path) -> bool:
    """Examples/s against replicas; hollow markers for virtual devices (shared hardware)."""
    records = [r for r in _ok_records(run) if "examples_per_second" in r]
    if not records:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in records:
        cfg, virtual = r["config"], r["strategy"].get("virtual_devices")
        label = f"{cfg['workload']}/{cfg['loop']}/{cfg['strategy']}"
        ax.scatter(r["strategy"]["replicas"], r["examples_per_second"],
                   facecolors="none" if virtual else None, edgecolors="C0" if virtual else None, s=60)
        ax.annotate(label, (r["strategy"]["replicas"], r["examples_per_second"]), fontsize=7,
                    xytext=(4, 2), textcoords="offset points")
    ax.set_xlabel("replicas (hollow: virtual devices sharing one physical device)")
    ax.set_ylabel("global examples per second")
    ax.set_title("Throughput against replicas")
    ax.set_xticks(sorted({r["strategy"]["replicas"] for r in records}))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def accuracy_chart(run: StoredRun, path: Path) -> bool:
    """Test accuracy against median step time, one marker per cell."""
    records = [r for r in _ok_records(run) if r.get("accuracy")]
    if not records:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, workload in enumerate(dict.fromkeys(r["config"]["workload"] for r in records)):
        rows = [r for r in records if r["config"]["workload"] == workload]
        ax.scatter([r["step_time"]["median"] * 1e3 for r in rows],
                   [r["accuracy"]["test"]["accuracy"] for r in rows], label=workload, color=f"C{i}")
        for r in rows:
            ax.annotate(f"{r['config']['strategy']}/{r['config']['loop']}",
                        (r["step_time"]["median"] * 1e3, r["accuracy"]["test"]["accuracy"]),
                        fontsize=7, xytext=(4, 2), textcoords="offset points")
    ax.set_xlabel("median step time (ms): left is faster")
    ax.set_ylabel("test accuracy: up is better")
    ax.set_title("Accuracy against speed")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def trend_chart(history: list[StoredRun], path: Path, threshold: float, alpha: float) -> list[str]:
    """Per workload, each cell's median step time across runs; red x where a run regressed."""
    if len(history) < 2:
        return []
    plt = _pyplot()
    cells = list(dict.fromkeys(c for run in history for c, reps in run.cells().items() if ok(reps)))
    names = list(dict.fromkeys(c.split("-")[0] for c in cells))
    # Each panel tall enough for its legend (one line per cell), 20 distinct colours.
    heights = [max(3.2, 0.16 * sum(c.split("-")[0] == n for c in cells)) for n in names]
    fig, axes = plt.subplots(len(names), 1, figsize=(9, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    panel = {name: ax for name, ax in zip(names, axes[:, 0])}
    colours = plt.get_cmap("tab20").colors
    drawn = dict.fromkeys(names, 0)   # lines per panel, for colour and style
    for cell in cells:
        xs, ys = [], []
        for run in history:
            processes = per_process_samples(run.cells().get(cell, []))
            if processes:
                xs.append(run.number)
                # The same estimate compare's verdicts (and the red x) use.
                ys.append(stats.median_of_medians(processes) * 1e3)
        name = cell.split("-")[0]
        k, drawn[name] = drawn[name], drawn[name] + 1
        panel[name].plot(xs, ys, marker="o", color=colours[k % 20], linestyle="-" if k < 20 else "--",
                         label=cell.split("-", 1)[1])
    regressions: list[str] = []
    for before, after in zip(history, history[1:]):
        try:
            comparison = compare_runs(before, after, threshold, alpha)
        except UserError:
            continue
        for c in comparison.compared:
            if c.verdict == "slower":
                panel[c.cell.split("-")[0]].scatter([after.number], [c.median_b * 1e3], marker="x", s=120,
                                                    color="red", zorder=5)
                regressions.append(f"run {after.number:04d}: {c.cell} x{c.ratio:.2f} vs run {before.number:04d}")
    for name, ax in panel.items():
        ax.set_title(f"{name}: median step time per run (red x: significantly slower than the run before)",
                     fontsize=9)
        ax.set_xticks([run.number for run in history])
        ax.set_ylim(bottom=0)
        ax.set_ylabel("ms per step")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    axes[-1, 0].set_xlabel("run number")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return regressions


def write_report(run: StoredRun, history: list[StoredRun], out_dir: str | os.PathLike,
                 threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA) -> Path:
    """Writes ``report.md`` and its PNG charts into ``out_dir``; returns the Markdown path."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"Cannot create report folder {out}: {exc.strerror}.") from None
    info = run.machine_info.get("distbench", {})
    lines = [
        f"# distbench report: {run.label}",
        "",
        f"Run {run.number:04d} of machine `{run.machine_id}`, {run.data.get('datetime', '?')}, "
        f"commit `{(run.data.get('commit_info', {}).get('id') or '?')[:8]}`.",
        f"TensorFlow {info.get('tensorflow')}, Keras {info.get('keras')}, {info.get('cpu_count')} CPUs "
        f"({info.get('cpu_model')}), GPUs: {', '.join(info.get('gpus') or []) or 'none'}.",
        "",
        "## Cells",
        "",
        tables.render(run.cells(), "markdown"),
        "",
    ]
    flags = tables.guard_lines(run.cells())
    lines += [
        "## Accuracy guard",
        "",
        "Each cell's test metric (the workload's: accuracy, or AUC for multibranch) against the reference cell "
        "(`default` strategy, `fit`) run with several training seeds: accepted within mean ± max(3 sd, 0.02).",
        "",
        *([f"- **{line}**" for line in flags] or ["No cell is outside its reference's spread."]),
        "",
    ]
    if run.overhead:
        lines += [
            "## Harness overhead",
            "",
            "The harness's measurement of a cell against a bare TensorFlow loop of the same model, data and "
            "loop, interleaved step by step in one process; and fit's wall time with the harness's per-step "
            "timing callback against without it, in interleaved pairs of calls. Target: at most +3%.",
            "",
            *[f"- {line}" for r in run.overhead for line in tables.overhead_lines(r)],
            "",
        ]
    scaling_table = tables.render_scaling(run.cells(), "markdown")
    if scaling_table:
        lines += [
            "## Scaling efficiency",
            "",
            "throughput(N replicas) / (N x throughput of the one-replica `default` cell), per workload and loop. "
            "Strong: global batch fixed; weak: per-replica batch fixed. Rows marked SHARED ran on virtual "
            "devices or local workers that share one machine's hardware: not real scaling.",
            "",
            scaling_table,
            "",
        ]
    charts = [
        ("step_time.png", "Step time per strategy and loop", step_time_chart(run, out / "step_time.png")),
        ("throughput.png", "Throughput against replicas", throughput_chart(run, out / "throughput.png")),
        ("accuracy.png", "Accuracy against speed", accuracy_chart(run, out / "accuracy.png")),
    ]
    for name, title, made in charts:
        if made:
            lines += [f"## {title}", "", f"![{title}]({name})", ""]
    regressions = trend_chart(history, out / "trend.png", threshold, alpha)
    if len(history) >= 2:
        lines += [f"## History ({len(history)} runs of this machine)", "", "![History](trend.png)", ""]
        lines += [f"- {r}" for r in regressions] or ["No run was significantly slower than the run before it."]
        lines.append("")
    path = out / "report.md"
    from bench.fileio import atomic_write_text

    atomic_write_text(str(path), "\n".join(lines))
    return path
