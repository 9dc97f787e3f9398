"""``report.html``: one self-contained page (Jinja2 template, matplotlib SVG inline, no
script, no network) with the run's summary and verdicts, time to target, share of peak,
accuracy against speed, a trend per matrix cell, and machines side by side."""

from __future__ import annotations

from pathlib import Path

import jinja2
from markupsafe import Markup

from distbench.analysis import check, scaling
from distbench.analysis.compare import DEFAULT_THRESHOLD, MIN_HISTORY_RUNS, compare_runs, comparison_noise
from distbench.analysis.machines import MachineView
from distbench.analysis.trends import Trend
from distbench.core.errors import UserError
from distbench.render import (comparison_table, guard_text, history_charts, overhead_lines, run_table, stored_pairs, summary,
                              target_table, units)
from distbench.render.figures import svg
from distbench.storage.stored_run import StoredRun

TEMPLATES = Path(__file__).parent / "templates"


def render(run: StoredRun, history: list[StoredRun], trends: list[Trend], view: MachineView | None,
           charts: dict[str, str | None], threshold: float = DEFAULT_THRESHOLD) -> str:
    """The page's HTML; ``charts``: the run's charts as SVG by name (None: nothing to draw)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    # The charts are SVG that ElementTree wrote (their text escaped): markup, not text to escape.
    env.filters["svg"] = Markup
    return env.get_template("report.html.j2").render(
        run=_run_context(run), verdicts=_verdicts(run, history, threshold), charts=charts,
        trends=_trend_groups(trends), machines=_machines(view) if view else None, threshold=threshold,
        no_trend=no_trend_line(history, trends),
    )


def no_trend_line(history: list[StoredRun], trends: list[Trend]) -> str:
    """Why no trend is drawn for a history of time-to-target runs ('' when one is, or none is
    there): it had read "No matrix cell has been stored on this machine", "no step found"."""
    plain = [run for run in history if not run.interrupted and not run.interleaved]
    if trends or not plain or not all(r.is_target for run in plain for r in run.results.values()):
        return ""
    return ("These runs measured time to target only: a trend is drawn of a matrix cell's step time, and times to "
            "target are compared run against run with `distbench compare A B` (machines too: MACHINE/N)")


def _run_context(run: StoredRun) -> dict:
    results = run.results
    return {
        "label": run.label, "number": f"{run.number:04d}", "machine": run.machine_id, "commit": run.commit,
        "elsewhere": run_table.elsewhere_line(run) if run.measured_on else "",
        "datetime": run.data.get("datetime", "?"), "interrupted": run_table.interrupted_line(results)
        if run.interrupted else "",
        "environment": run_table.environment_line(run.machine_info),
        "summary": {"headers": summary.HEADERS, "rows": summary.summary_rows(results)},
        "not_measured": summary.not_measured_lines(results),
        "full": {"headers": run_table.HEADERS, "rows": [run_table.row(r) for r in results.values()]},
        "targets": {"headers": target_table.TARGET_HEADERS, "rows": target_table.target_rows(results),
                    "note": target_table.target_note(results)},
        "peak": run_table.peak_line(run.peak),
        "compute": [[r.id, run_table.compute_cell(r)] for r in results.values()
                    if r.measured and (r.flops_per_step or r.matmul) and not r.spec.is_replicate],
        "scaling": {"headers": run_table.COMPACT_SCALING_HEADERS, "rows": run_table.scaling_rows(
            scaling.efficiencies(list(results.values())), compact=True)},
        "overhead": [line for r in run.overhead for line in overhead_lines.overhead_lines(r)],
        "accuracy_note": _accuracy_note(results),
    }


def _accuracy_note(results) -> str:
    """Why a run has no chart of accuracy against speed."""
    if any(r.measured and r.spec.is_target and r.guard_value is not None for r in results.values()):
        return ("This run measured time to target: its cells stop when they reach it, so their final test metrics "
                "are not set against speed here; each cell's time and steps to the target are in Time to target.")
    return "No cell of this run has a test metric."


def _verdicts(run: StoredRun, history: list[StoredRun], threshold: float) -> dict:
    """The guard's flags, an A/B run's pairs, and the run against the run before it that
    shares cells with it (compare's judge, this machine's history noise)."""
    return {
        "guard_rule": guard_text.guard_rule(), "guard_flags": guard_text.guard_lines(run.results),
        "guard_outcome": guard_text.guard_outcome(run.results, bool(run.interleaved), run.guard_seeds),
        "guard_metrics": guard_text.guard_metrics(run.results),
        "interleaved": _interleaved(run.interleaved), "previous": _previous(run, history, threshold),
    }


def _previous(run: StoredRun, history: list[StoredRun], threshold: float) -> dict | None:
    """The run against the latest earlier run of its machine that measured a cell of it the
    same way (compare's judge): the compared cells' rows, and the others counted by why;
    None when there is no such run."""
    for before in reversed([r for r in history if r.number < run.number and not r.interrupted]):
        try:
            noise_a, noise_b = comparison_noise(history, history, before, run)
            comparison = compare_runs(before, run, threshold, noise_a=noise_a, noise_b=noise_b)
        except UserError:
            continue   # no cell in common
        if comparison.compared:
            others: dict[str, list[str]] = {}
            for c in comparison.cells:
                if not c.verdict:
                    others.setdefault(c.presence, []).append(c.cell)
            # Same cells, but another fingerprint (a TensorFlow upgrade, a variable such as
            # TF_ENABLE_ONEDNN_OPTS): said above the verdicts, which measure it with the code.
            differ = comparison_table.machine_line(comparison.machine_diff) if comparison.machine_diff else ""
            worse = check.learned_worse(comparison)
            return {"label": before.label, "commit": before.commit, "headers": comparison_table.COMPARE_HEADERS,
                    "machines": differ, "bad": [i for i, c in enumerate(comparison.compared)
                                                if c.verdict == "slower" or c.cell in worse],
                    "rows": comparison_table.comparison_rows(comparison.compared, worse),
                    "others": [f"{why} ({len(cells)}): {', '.join(cells)}" for why, cells in others.items()]}
    return None


def _interleaved(stored: dict) -> dict | None:
    """An A/B run's verdict per cell, from its stored pairs: speed and test metric."""
    if not stored:
        return None
    rows, bad = stored_pairs.stored_paired(stored)
    return {"a": stored["a"]["label"], "b": stored["b"]["label"], "note": stored_pairs.stored_paired_note(stored),
            "headers": stored_pairs.STORED_PAIRED_HEADERS, "rows": rows, "bad": bad}


def _trend_groups(trends: list[Trend]) -> list[dict]:
    """Per workload: each cell's chart and its steps, in order."""
    groups: dict[str, list[dict]] = {}
    for k, trend in enumerate(trends):
        fig, tips = history_charts.trend(trend, f"t{k}")
        groups.setdefault(trend.workload, []).append({
            "cell": trend.cell, "chart": svg(fig, f"t{k}", tips), "points": len(trend.points),
            "fitted": bool(trend.levels),
            "noise": f"{trend.noise.sd:.3f} over {trend.noise.runs} runs" if trend.noise else "",
            "steps": [{"text": history_charts.step_text(s), "regression": s.regression} for s in trend.steps],
            "breaks": [history_charts.break_text(b) for b in trend.breaks],
        })
    return [{"workload": w, "cells": cells} for w, cells in groups.items()]


def _machines(view: MachineView) -> dict:
    """The fingerprints' differences, then per workload a chart and a table."""
    groups: dict[str, list] = {}
    for row in view.rows:
        groups.setdefault(row.workload, []).append(row)
    workloads = []
    for k, (workload, rows) in enumerate(groups.items()):
        fig, tips = history_charts.machines(view, rows, workload, f"m{k}")
        workloads.append({"workload": workload, "chart": svg(fig, f"m{k}", tips),
                          "rows": [_machine_row(view, row) for row in rows]})
    others = view.machines[1:]
    headers = ["cell", f"{view.reference} (reference): median ms [95%]"]
    for m in others:
        headers += [f"{m}: median ms [95%]", "B/A [95% CI]", "verdict"]
    runs = {m: sorted({f"{e.run.number:04d} ({e.run.commit})" for row in view.rows for mm, e in row.latest.items()
                       if mm == m}) for m in view.machines}
    commits = {e.run.commit for row in view.rows for e in row.latest.values()}
    builds = {e.run.build for row in view.rows for e in row.latest.values()}
    return {"reference": view.reference, "machines": view.machines, "workloads": workloads, "headers": headers,
            "one_noise": _one_noise_lines(view),
            "commits": sorted(commits) if len(commits) > 1 else [], "builds": sorted(builds) if len(builds) > 1 else [],
            "runs": [f"{m}: run {', '.join(runs[m])}" for m in view.machines],
            "differences": [[field] + [str(values[m]) for m in view.machines] for field, values in view.differences]}


def _one_noise_lines(view: MachineView) -> list[str]:
    """Per machine, the cells judged with one machine's noise for both, as compare marks them
    ("8 runs (A)"): a new node with one run had read firm verdicts, said to use both noises."""
    judged: dict[tuple[str, str], list[str]] = {}
    for row in view.rows:
        for m, e in row.latest.items():
            if e.comparison is not None and e.comparison.noise_of:
                alone = view.reference if e.comparison.noise_of == "A" else m
                short = m if alone == view.reference else view.reference
                judged.setdefault((alone, short), []).append(row.cell)
    return [f"{len(cells)} cell{'s' * (len(cells) != 1)} judged with {alone}'s noise alone, standing for "
            f"{short}'s, which has fewer than {MIN_HISTORY_RUNS} stored runs that measured them so besides the run "
            f"compared: "
            f"{', '.join(cells)}" for (alone, short), cells in judged.items()]


def _machine_row(view: MachineView, row) -> list[str]:
    cells = [row.cell[len(row.workload) + 1:]]
    for m in view.machines:
        entry = row.latest.get(m)
        if entry is None:
            cells += ["-"] if m == view.reference else ["-", "-", "-"]
            continue
        r, c = entry.result, entry.comparison
        cells.append(f"{units.ms(r.median)} [{units.ms_range(r.interval)}]")
        if m == view.reference:
            continue
        if c is None:
            cells += ["-", "no reference measurement"]
        elif not c.verdict:
            cells += ["-", c.presence]
        else:
            cells += [units.ratio(c.ratio, c.ratio_ci), c.verdict + (" (one machine's noise)" if c.noise_of else "")]
    return cells
