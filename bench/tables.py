"""Renders cell records as a table (tabulate). Renders only: no timing, no I/O."""

from __future__ import annotations

from tabulate import tabulate

from bench.records import CellRecord

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


def render(records: list[CellRecord], fmt: str = "github") -> str:
    return tabulate([row(r) for r in records], headers=HEADERS, tablefmt=fmt, disable_numparse=True)
