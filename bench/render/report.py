"""The report of a run: ``report.md`` with PNG charts, and ``report.html`` beside it (one
self-contained page: :mod:`distbench.render.html_report`), from the same analysis and figures.
"""

from __future__ import annotations

import os
from pathlib import Path

from distbench.analysis.compare import DEFAULT_THRESHOLD
from distbench.analysis.machines import side_by_side
from distbench.analysis.trends import Trend, trends
from distbench.core.errors import UserError
from distbench.core.fileio import atomic_write_text
from distbench.render import (guard_text, history_charts, html_report, overhead_lines, run_charts, run_table, tables,
                              stored_pairs, target_table)
from distbench.render.figures import save_png, svg
from distbench.render.summary import render_summary
from distbench.storage.stored_run import StoredRun


def write_report(run: StoredRun, histories: dict[str, list[StoredRun]], out_dir: str | os.PathLike,
                 threshold: float = DEFAULT_THRESHOLD, reference: str | None = None) -> tuple[Path, Path]:
    """Writes ``report.md`` with its PNG charts and ``report.html`` into ``out_dir``.

    ``histories``: every machine's stored runs (machine id -> runs in run order); trends are
    the reported run's machine's up to and including the run, and machines (each one's
    latest runs; the reported machine's up to the run) are compared with ``reference``
    (default: the reported run's machine). Returns the two paths."""
    # The run's history ends with it: a report of an older run shows what was known then.
    # Another machine's run copied in is reported on its own: that folder's history is not its.
    # Machines side by side keep the folder's own runs, which leave it out (load_history): it had
    # stood for its folder's machine there, its own machine compared with itself, "the same".
    history = [run] if run.measured_on else [r for r in histories.get(run.machine_id, []) if r.number <= run.number] or [run]
    if not run.measured_on:
        histories = {**histories, run.machine_id: history}
    histories = {m: runs for m, runs in histories.items() if runs}   # a folder that held only the copy: none
    chosen = reference or (run.machine_id if run.machine_id in histories else None)
    view = side_by_side(histories, chosen, threshold) if chosen and (len(histories) > 1 or reference) else None
    cell_trends = trends(history, threshold)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"Cannot create report folder {out}: {exc.strerror}.") from None
    try:   # a folder that exists but cannot be written, or a report.md that is a folder
        chart_lines, svgs = _charts(run, out)
        lines = (_heading(run) + _target_section(run) + _interleaved_section(run) + _guard_section(run)
                 + _overhead_section(run)
                 + _scaling_section(run) + chart_lines + _history_section(history, cell_trends))
        markdown, page = out / "report.md", out / "report.html"
        atomic_write_text(str(markdown), "\n".join(lines))
        atomic_write_text(str(page), html_report.render(run, history, cell_trends, view, svgs, threshold))
    except OSError as exc:
        raise UserError(f"Cannot write the report into {out}: {exc.strerror} ({exc.filename}). Give --out DIR, a "
                        "folder you can write.") from None
    return markdown, page


def wrote_line(page, markdown) -> str:
    """What ``report`` wrote, in one line."""
    return f"Wrote {page} (one self-contained page) and {markdown} (charts beside it)"


def _heading(run: StoredRun) -> list[str]:
    lines = [
        f"# distbench report: {run.label}",
        "",
        f"Run {run.number:04d} of machine `{run.machine_id}`, {run.data.get('datetime', '?')}, commit `{run.commit}`.",
        f"{run_table.environment_line(run.machine_info)}.",
        "",
    ]
    if run.measured_on:
        lines += [f"**{run_table.elsewhere_line(run)}**", ""]
    if run.interrupted:
        lines += [f"**{run_table.interrupted_line(run.results)}**", ""]
    if run_table.peak_line(run.peak):
        lines += [run_table.peak_line(run.peak), ""]
    return lines + ["## Cells", "", "```", render_summary(run.results, "report.html's \"Every column\""), "```", "",
                    "Every column of every cell: report.html, \"Every column\".", ""]


def _target_section(run: StoredRun) -> list[str]:
    rows = target_table.target_rows(run.results)
    if not rows:
        return []
    return ["## Time to target", "", target_table.target_note(run.results), "",
            tables.render_rows(target_table.TARGET_HEADERS, rows, "markdown"), ""]


def _interleaved_section(run: StoredRun) -> list[str]:
    stored = run.interleaved
    if not stored:
        return []
    rows, _ = stored_pairs.stored_paired(stored)
    return [f"## Interleaved A/B: {stored['b']['label']} against {stored['a']['label']}", "",
            stored_pairs.stored_paired_note(stored), "",
            tables.render_rows(stored_pairs.STORED_PAIRED_HEADERS, rows, "markdown"), ""]


def _guard_section(run: StoredRun) -> list[str]:
    flags = guard_text.guard_lines(run.results)
    outcome = guard_text.guard_outcome(run.results, bool(run.interleaved), run.guard_seeds)
    return [
        "## Accuracy guard",
        "",
        f"Each cell's test metric (its workload's guard metric; {guard_text.guard_metrics(run.results)}) against "
        f"the reference cell (`default` strategy, `fit`) run with several training seeds: {guard_text.guard_rule()}.",
        "",
        *([f"- **{line}**" for line in flags] or [outcome]),
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


RUN_CHARTS = [
    ("step_time", "Step time per strategy and loop", run_charts.step_time),
    ("throughput", "Throughput against replicas", run_charts.throughput),
    ("accuracy", "Accuracy against speed", run_charts.accuracy),
    ("time_to_target", "Test metric against training time", run_charts.time_to_target),
]


def _charts(run: StoredRun, out: Path) -> tuple[list[str], dict[str, str | None]]:
    """Each of the run's charts drawn once: a PNG beside report.md (and its section), and
    the same figure as SVG for report.html (None where the run has nothing to draw)."""
    lines, svgs = [], {}
    for key, title, chart in RUN_CHARTS:
        drawn = chart(run)
        svgs[key] = None
        if drawn:
            fig, tips = drawn
            save_png(fig, out / f"{key}.png")
            svgs[key] = svg(fig, key, tips)
            lines += [f"## {title}", "", f"![{title}]({key}.png)", ""]
    return lines, svgs


def _history_section(history: list[StoredRun], cell_trends: list[Trend]) -> list[str]:
    """The steps found in this machine's history, regressions first; the charts are report.html's."""
    if len(history) < 2:
        return []
    ordered = sorted(((t.cell, s) for t in cell_trends for s in t.steps), key=lambda found: not found[1].regression)
    lines = [f"## History ({len(history)} runs of this machine)", "",
             "A trend per matrix cell, with the steps found in it, is in report.html (\"Trends\"). The steps "
             "found, each with what `compare`'s judge says of the run after it against the run before; those it "
             "calls slower are marked **regression** and come first:", ""]
    lines += [f"- {'**regression** ' if s.regression else ''}{cell}: {history_charts.step_text(s)}"
              for cell, s in ordered] or [f"- {html_report.no_trend_line(history, cell_trends) or 'No step was found.'}"]
    return lines + [""]
