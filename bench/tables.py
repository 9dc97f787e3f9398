"""Renders records and comparisons as tables (tabulate), CSV or JSON. Renders only."""

from __future__ import annotations

import csv
import io
import json

from tabulate import tabulate

from bench import records, stats
from bench.records import CellRecord

FORMATS = ("table", "markdown", "csv", "json")

HEADERS = [
    "workload", "strategy", "replicas", "loop", "runs", "median ms", "95% CI ms", "p90 ms", "cv",
    "throughput", "test acc", "accuracy guard", "peak RSS MiB", "data", "notes",
]


def row(repeats: list[CellRecord]) -> list:
    """One cell's row; with several repeats (fresh processes), the median over processes.

    ``median ms`` is the median of the per-process medians, ``95% CI`` its hierarchical
    bootstrap interval (processes, then steps; with one process it shows step noise
    only), ``p90`` and ``cv`` describe every steady step of every process together.
    """
    first = repeats[0]
    cfg = first.get("config", {})
    base = [cfg.get("workload"), cfg.get("strategy")]
    measured = records.ok(repeats)
    if not measured:
        label = "SKIPPED" if first.get("status") == "skipped" else "ERROR"
        return base + ["", _loop_label(first)] + [""] * 10 + [f"{label}: {records.short_reason(first)}"]
    record = measured[0]
    per_process = records.per_process_samples(measured)
    median = stats.median_of_medians(per_process)
    lo, hi = stats.hierarchical_bootstrap_median_ci(per_process)
    pooled = stats.summarize(records.pooled_samples(measured))
    strategy = record.get("strategy", {})
    notes = list(strategy.get("notes", [])) + list(record.get("loop", {}).get("notes", []))
    failed = len(repeats) - len(measured)
    if failed:
        notes.append(f"{failed} of {len(repeats)} runs did not finish ok")
    return base + [
        strategy.get("replicas", ""),
        _loop_label(record),
        len(measured),
        f"{median * 1e3:.2f}",
        f"{lo * 1e3:.2f}-{hi * 1e3:.2f}",
        f"{pooled.p90 * 1e3:.2f}",
        f"{pooled.cv:.2f}",
        _throughput(record, median),
        _accuracy(measured),
        _guard(record),
        f"{max(r['memory']['peak_rss_bytes'] for r in measured) / 2**20:.0f}",
        record.get("data", {}).get("source", "-"),
        "; ".join(notes),
    ]


def _loop_label(record: CellRecord) -> str:
    """The loop and what else names the cell: ``fit``, ``fit-spe50-xla``, ``fit-init1``."""
    cfg = record.get("config", {})
    prefix = f"{cfg.get('workload')}-{cfg.get('strategy')}-"
    cell = record.get("cell", "")
    return cell[len(prefix):] if cfg.get("loop") and cell.startswith(prefix) else cfg.get("loop") or "-"


def _throughput(record: CellRecord, median: float) -> str:
    if "matmul" in record:
        m = record["matmul"]
        primary = m["devices"][m["primary_device"]]
        text = f"{primary['gflops']:.1f} GFLOP/s"
        if m["primary_device"] != "/CPU:0":
            text += f" ({m['speedup_over_cpu'][m['primary_device']]:.1f}x CPU)"
        return text
    return f"{stats.throughput(record['batch']['global'], median):.0f} ex/s"


def _accuracy(measured: list[CellRecord]) -> str:
    accuracy = records.mean_test(measured)
    return "-" if accuracy is None else f"{accuracy:.3f}"


def _guard(record: CellRecord) -> str:
    verdict = record.get("accuracy_guard")
    if not verdict:
        return "-"
    if verdict["status"] == "unguarded":
        return "unguarded"
    ref = verdict["reference"]
    shown = f"{verdict.get('metric', 'accuracy')} {verdict['value']:.3f} vs {ref['mean']:.3f} ± {ref['sd']:.3f}"
    return f"ok: {shown}" if verdict["status"] == "ok" else f"{verdict['status'].upper()}: {shown}"


def render_rows(headers: list[str], rows: list[list], fmt: str = "table") -> str:
    """``rows`` as a plain table, GitHub Markdown, CSV, or JSON (a list of objects)."""
    if fmt == "table":
        return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)
    if fmt == "markdown":
        return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    if fmt == "json":
        return json.dumps([dict(zip(headers, r)) for r in rows], indent=2)
    raise ValueError(f"Unknown format {fmt!r}. Known: {', '.join(FORMATS)}.")


def render(cell_repeats: dict[str, list[CellRecord]], fmt: str = "markdown") -> str:
    """The run's table: one row per cell, over all of its repeats."""
    return render_rows(HEADERS, [row(reps) for reps in cell_repeats.values()], fmt)


def _representative(repeats: list[CellRecord]) -> CellRecord:
    """The first ok repeat, its throughput taken at the median over all processes."""
    measured = records.ok(repeats)
    first = measured[0]
    if "batch" not in first:
        return first
    median = stats.median_of_medians(records.per_process_samples(measured))
    return {**first, "examples_per_second": stats.throughput(first["batch"]["global"], median)}


def guard_lines(cell_repeats: dict[str, list[CellRecord]]) -> list[str]:
    """One line per cell the accuracy guard flagged, with its numbers."""
    from bench import guard

    return [f"{cell}: {v['status'].upper()}, {v['message']}" for cell, v in guard.flagged(cell_repeats).items()]


def render_scaling(cell_repeats: dict[str, list[CellRecord]], fmt: str = "markdown") -> str:
    """The scaling-efficiency table ("" when no cell has 2+ replicas and a reference)."""
    from bench import scaling

    rows = scaling.efficiencies([_representative(reps) for reps in cell_repeats.values() if records.ok(reps)])
    return render_rows(scaling.HEADERS, scaling.table_rows(rows), fmt) if rows else ""


def run_summary(cell_repeats: dict[str, list[CellRecord]], fmt: str = "table", overhead: list[dict] = ()) -> str:
    """The run's table, then (except as JSON) the guard's flags, the overhead and scaling."""
    parts = [render(cell_repeats, fmt)]
    if fmt == "json":
        return parts[0]
    flags = guard_lines(cell_repeats)
    if flags:
        parts.append("Accuracy guard: outside the reference's normal spread (default fit over seeds):\n"
                     + "\n".join(f"  {line}" for line in flags))
    if overhead:
        parts.append("Harness overhead (against bare TensorFlow / untimed fit, interleaved in one process):\n"
                     + "\n".join(f"  {line}" for r in overhead for line in overhead_lines(r)))
    scaling_table = render_scaling(cell_repeats, fmt)
    if scaling_table:
        parts.append("Scaling efficiency = throughput(N replicas) / (N x throughput(1 replica, default)):\n"
                     + scaling_table)
    return "\n\n".join(parts)


def overhead_line(record: dict) -> str:
    """One line: what the harness adds to the median step, its interval, and the target."""
    if record.get("status") != "ok":
        return f"{record.get('cell')}: {record.get('status', '').upper()}: {record.get('reason', '')}"
    o = record["overhead"]
    added = _against_target(o, "to the median step")
    return (f"{record['cell']}: the harness adds {added} (median of {o['rounds']} rounds' harness/bare ratios, "
            f"{o['steps_per_round']} interleaved steps each; all steps: harness "
            f"{o['harness']['median'] * 1e3:.2f} ms, bare TensorFlow {o['bare']['median'] * 1e3:.2f} ms)")


def overhead_lines(record: dict) -> list[str]:
    """The custom loop's line, then (when measured) what the timing callback costs fit."""
    lines = [overhead_line(record)]
    f = record.get("overhead", {}).get("fit")
    if f:
        added = _against_target(f, "to fit's wall time")
        lines.append(
            f"{record['config']['workload']}-default-fit-overhead: the per-step timing callback adds {added} "
            f"(median of {f['pairs']} pairs of {f['steps_per_call']}-step fit calls with and without it)")
    return lines


def _against_target(part: dict, what: str) -> str:
    """``+0.7% [95% CI -1.2%, +2.0%] <what>, within the 3% target`` from an overhead measurement."""
    lo, hi = ((x - 1) * 100 for x in part["ratio_ci"])
    verdict = "within" if part["within_target"] else "ABOVE"
    return (f"{part['added'] * 100:+.1f}% [95% CI {lo:+.1f}%, {hi:+.1f}%] {what}, "
            f"{verdict} the {part['target'] * 100:.0f}% target")


COMPARE_HEADERS = [
    "cell", "runs A/B", "median A ms", "median B ms", "B/A [95% CI]", "throughput B/A",
    "acc A", "acc B", "acc delta", "p", "verdict",
]


def comparison_rows(cells) -> list[list]:
    rows = []
    for c in cells:
        if not c.verdict:
            rows.append([c.cell, "", "", "", "", "", "", "", "", "", c.presence])
            continue
        acc = [f"{v:.3f}" if v is not None else "-" for v in (c.accuracy_a, c.accuracy_b)]
        delta = f"{c.accuracy_delta:+.3f}" if c.accuracy_delta is not None else "-"
        rows.append([
            c.cell, f"{c.processes_a}/{c.processes_b}", f"{c.median_a * 1e3:.2f}", f"{c.median_b * 1e3:.2f}",
            f"{c.ratio:.2f} [{c.ratio_ci[0]:.2f}, {c.ratio_ci[1]:.2f}]", f"{c.throughput_ratio:.2f}",
            *acc, delta, f"{c.p_value:.1e}", c.verdict,
        ])
    return rows


TUNE_HEADERS = [
    "rank", "strategy", "loop", "steps/exec", "XLA", "runs", "median ms", "95% CI ms", "speed-up vs plain fit [95% CI]",
    "accuracy guard", "notes",
]


def tune_rows(ranked) -> list[list]:
    rows = []
    for k, r in enumerate(ranked, 1):
        speedup = f"{r.speedup:.2f}x [{r.speedup_ci[0]:.2f}, {r.speedup_ci[1]:.2f}]" if r.speedup else "-"
        rows.append([
            k if r.accepted else "rejected", r.strategy, r.loop, r.steps_per_execution, "on" if r.jit_compile else "off",
            r.processes, f"{r.median * 1e3:.2f}", f"{r.median_ci[0] * 1e3:.2f}-{r.median_ci[1] * 1e3:.2f}", speedup,
            r.guard, r.note,
        ])
    return rows


def tune_verdict(ranked) -> str:
    """The fastest accepted configuration, and which others its interval cannot tell apart."""
    from bench.tune import distinguishable

    accepted = [r for r in ranked if r.accepted]
    if not accepted:
        return "No configuration ran and passed the accuracy guard."
    best = accepted[0]
    label = lambda r: f"{r.loop} (steps/exec {r.steps_per_execution}, XLA {'on' if r.jit_compile else 'off'})"  # noqa: E731
    text = f"Fastest: {best.strategy} {label(best)}, {best.median * 1e3:.2f} ms/step"
    if best.speedup:
        text += f", {best.speedup:.2f}x plain fit [95% CI {best.speedup_ci[0]:.2f}, {best.speedup_ci[1]:.2f}]"
    ties = [label(r) for r in accepted[1:] if not distinguishable(best, r)]
    if ties:
        text += f". Not distinguishable from it at this noise (overlapping intervals): {', '.join(ties)}"
    return text + "."
