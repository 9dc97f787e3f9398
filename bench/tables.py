"""Renders records and comparisons as tables (tabulate), CSV or JSON. Renders only."""

from __future__ import annotations

import csv
import io
import json

from tabulate import tabulate

from bench.records import CellRecord

FORMATS = ("table", "markdown", "csv", "json")

HEADERS = [
    "workload", "strategy", "replicas", "loop", "median ms", "p90 ms", "cv",
    "throughput", "test acc", "peak RSS MiB", "data", "notes",
]


def row(record: CellRecord) -> list:
    cfg = record.get("config", {})
    base = [cfg.get("workload"), cfg.get("strategy")]
    if record.get("status") != "ok":
        label = "SKIPPED" if record.get("status") == "skipped" else "ERROR"
        return base + ["", cfg.get("loop") or "-", "", "", "", "", "", "", "", f"{label}: {record.get('reason', '')}"]
    st = record["step_time"]
    strategy = record.get("strategy", {})
    notes = list(strategy.get("notes", [])) + list(record.get("loop", {}).get("notes", []))
    return base + [
        strategy.get("replicas", ""),
        cfg.get("loop") or "-",
        f"{st['median'] * 1e3:.2f}",
        f"{st['p90'] * 1e3:.2f}",
        f"{st['cv']:.2f}",
        _throughput(record),
        _accuracy(record),
        f"{record['memory']['peak_rss_bytes'] / 2**20:.0f}",
        record.get("data", {}).get("source", "-"),
        "; ".join(notes),
    ]


def _throughput(record: CellRecord) -> str:
    if "matmul" in record:
        m = record["matmul"]
        primary = m["devices"][m["primary_device"]]
        text = f"{primary['gflops']:.1f} GFLOP/s"
        if m["primary_device"] != "/CPU:0":
            text += f" ({m['speedup_over_cpu'][m['primary_device']]:.1f}x CPU)"
        return text
    return f"{record['examples_per_second']:.0f} ex/s"


def _accuracy(record: CellRecord) -> str:
    test = record.get("accuracy", {}).get("test")
    return f"{test['accuracy']:.3f}" if test else "-"


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


def render(records: list[CellRecord], fmt: str = "markdown") -> str:
    return render_rows(HEADERS, [row(r) for r in records], fmt)


def render_scaling(records: list[CellRecord], fmt: str = "markdown") -> str:
    """The scaling-efficiency table of ``records`` ("" when no cell has 2+ replicas and a reference)."""
    from bench import scaling

    rows = scaling.efficiencies(records)
    return render_rows(scaling.HEADERS, scaling.table_rows(rows), fmt) if rows else ""


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
