"""The harness-overhead benchmark's lines."""

from __future__ import annotations

from distbench.core import stats
from distbench.core.config import OVERHEAD_TARGET as TARGET
from distbench.core.config import CellSpec
from distbench.render import units


def overhead_line(record: dict) -> str:
    """One line: what the harness adds to the median step, its interval, and the target."""
    if record.get("status") != "ok":
        return f"{record.get('cell')}: {record.get('status', '').upper()}: {record.get('reason', '')}"
    o = record["overhead"]
    if "pairs" in o:
        if not o.get("ratio_ci"):
            return f"{record['cell']}: {o['pairs']} pair(s): no interval"
        return (f"{record['cell']}: the harness adds {_against_target(o, 'to the median step')} (B/A of {o['pairs']} "
                f"interleaved process pairs; median step: bare TensorFlow {units.ms(stats.percentile(o['bare'], 50))} "
                f"ms, harness {units.ms(stats.percentile(o['harness'], 50))} ms)")
    added = _against_target(o, "to the median step")
    return (f"{record['cell']}: the harness adds {added} (median of {o['rounds']} rounds' harness/bare ratios, "
            f"{o['steps_per_round']} interleaved steps each; all steps: harness "
            f"{units.ms(o['harness']['median'])} ms, bare TensorFlow {units.ms(o['bare']['median'])} ms)")


def overhead_lines(record: dict) -> list[str]:
    """The custom loop's line, then (when measured) what the timing callback costs fit."""
    lines = [overhead_line(record)]
    f = record.get("overhead", {}).get("fit")
    if f and "not_measured" in f:
        lines.append(f"fit's timing callback: not measured ({f['not_measured']})")
    elif not f and record.get("config", {}).get("timing_cost_pairs") == 0:   # runs stored before it said so
        lines.append("fit's timing callback: not measured (--timing-cost-pairs 0)")
    elif f and "error" in f:
        lines.append(f"fit's timing callback: not measured: {f['error']}")
    elif f:
        fit = CellSpec.from_dict(record["config"]).plain("default", "fit")
        added = _against_target(f, "to fit's wall time")
        lines.append(f"{fit.id}-overhead: the per-step timing callback adds {added} (median of {f['pairs']} "
                     f"pairs of {f['steps_per_call']}-step fit calls with and without it)")
    return lines


def _against_target(part: dict, what: str) -> str:
    """``+0.7% [95% CI -1.2%, +2.0%] <what>, within the 3% target`` from an overhead measurement:
    within when the interval's upper end is, ABOVE when its lower end is past the target,
    else not shown within."""
    low, high = part["ratio_ci"]
    lo, hi = units.percent_change(low), units.percent_change(high)
    # Fail closed: "within" only when the whole interval is, "ABOVE" when all of it is above.
    verdict = ("within" if high - 1 <= part["target"] else "ABOVE" if low - 1 > part["target"]
               else "not shown within")
    return (f"{units.percent_change(1 + part['added'])} [95% CI {lo}, {hi}] "
            f"{what}, {verdict} the {units.percent(part['target'])} target")


def overhead_target() -> str:
    return f"+{units.percent(TARGET)}"


# -- compare and check --------------------------------------------------------------------
