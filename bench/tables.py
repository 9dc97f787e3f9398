"""Renders results and verdicts as tables (tabulate), CSV, JSON and sentences. Renders only.

Every sentence a user reads about a run (table rows, the guard's flags, overhead and
scaling lines, compare's and check's verdicts, tune's ranking, progress lines) is built
here from values the logic modules computed; units come from :mod:`bench.units`.
"""

from __future__ import annotations

import csv
import io
import json

from tabulate import tabulate

from bench import units
from bench.results import CellResult

FORMATS = ("table", "markdown", "csv", "json")

HEADERS = [
    "workload", "strategy", "replicas", "loop", "runs", "median ms", "95% CI ms", "p90 ms", "cv",
    "throughput", "FLOPs: per step, achieved (share of peak)", "test acc", "accuracy guard", "peak RSS MiB", "data", "notes",
]


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


# -- the run table ------------------------------------------------------------------------


def row(result: CellResult) -> list:
    """One cell's row: the median over processes, its interval, and what the cell delivered.

    ``p90`` and ``cv`` describe every steady step of every process together.
    """
    spec = result.spec
    base = [spec.workload, spec.strategy]
    loop = spec.label + (f"@{result.id.rsplit('@', 1)[1]}" if "@" in result.id else "")   # an A/B run's side
    if not result.measured:
        label = "SKIPPED" if result.status == "skipped" else result.status.upper()
        return base + ["", loop] + [""] * 11 + [f"{label}: {result.reason}"]
    notes = result.notes
    roofline = roofline_note(result) if result.matmul else ""
    if roofline:
        notes.append(roofline)
    for device, why in (result.matmul or {}).get("failed_devices", {}).items():
        notes.append(f"{device}: {why}")
    if result.disturbed:
        worst = max(result.disturbed, key=lambda d: d["others_cpu"] + d["steal"])
        notes.append(f"DISTURBED ({len(result.disturbed)} of {result.processes} processes): other processes used "
                     f"{units.percent(worst['others_cpu'])} of the CPU, steal {units.percent(worst['steal'])}")
    if result.failed_repeats:
        notes.append(f"{result.failed_repeats} of {len(result.repeats)} runs did not finish ok")
    if result.timing_cost:
        notes.append(timing_cost_note(result.timing_cost))
    return base + [
        result.replicas or "", loop, result.processes, units.ms(result.median), units.ms_range(result.interval),
        units.ms(result.pooled.p90), f"{result.pooled.cv:.2f}", throughput(result), compute_cell(result),
        accuracy_cell(result),
        guard_cell(result.guard), units.mib(result.peak_rss_bytes), result.data_source, "; ".join(notes),
    ]


def timing_cost_note(cost: dict) -> str:
    """``timing callback: fit +2.1% [-0.4%, +4.0%] wall time with it (5 pairs); untimed fit
    10.7 ms/step``: what the per-step timing costs fit, and what untimed fit takes a step,
    host work between steps included (the cell's step times leave that out)."""
    low, high = cost["interval"]
    unit = f"{cost['processes']} processes" if cost["processes"] > 1 else f"{cost['pairs']} pairs"
    return (f"timing callback: fit {units.percent_change(cost['ratio'])} [{units.percent_change(low)}, "
            f"{units.percent_change(high)}] wall time with it ({unit}); untimed fit "
            f"{units.ms(cost['untimed_step_s'])} ms/step")


def throughput(result: CellResult) -> str:
    """Examples/s for a training cell; GFLOP/s (and speed-up over the CPU) for matmul."""
    m = result.matmul
    if not m:
        return units.rate(result.throughput)
    primary = m["devices"][m["primary_device"]]
    text = units.gflops(primary["gflops"])
    if m["primary_device"] != "/CPU:0":
        text += f" ({m['speedup_over_cpu'][m['primary_device']]:.1f}x CPU)"
    return text


def accuracy_cell(result: CellResult) -> str:
    """Test accuracy with the majority-class share beside it (``0.930 (majority 0.930)``), so
    that a figure on an imbalanced set reads as what it is."""
    text = units.metric(result.accuracy)
    if result.accuracy is not None and result.majority_share is not None:
        text += f" (majority {result.majority_share:.3f})"
    return text


def compute_cell(result: CellResult) -> str:
    """FLOPs per training step, achieved GFLOP/s and its share of the device's peak
    measured in the same run (``0.328 GFLOP/step, 36.7 GFLOP/s (14% of 266)``; a GPU's
    datasheet share too, where known)."""
    if result.achieved_flops is None:
        return "-"
    text = units.gflops(result.achieved_flops / 1e9)
    if result.flops_per_step:
        text = f"{result.flops_per_step / 1e9:.3g} GFLOP/step, " + text
    if result.share_of_peak is not None:
        text += f" ({units.share(result.share_of_peak)} of {result.peak['gflops']:.0f})"
    if result.share_of_datasheet is not None:
        text += f", {units.share(result.share_of_datasheet)} of datasheet"
    return text


def roofline_note(result: CellResult) -> str:
    """Where a matmul shape sits: its FLOPs per byte against the run's measured peak and
    bandwidth, so that nobody quotes one shape's rate as the device's speed."""
    m, p = result.matmul, result.peak
    intensity = m.get("flops_per_byte")
    if intensity is None:
        return ""
    shape = "x".join(str(d) for d in m["shape"])
    text = f"shape {shape}: {intensity:.0f} FLOP/byte"
    if p.get("bandwidth_gbs") and p.get("gflops"):
        bound = intensity * p["bandwidth_gbs"]
        limit = "compute" if bound >= p["gflops"] else "memory bandwidth"
        text += (f"; roofline: {p['bandwidth_gbs']:.1f} GB/s x {intensity:.0f} = {bound:.0f} GFLOP/s vs measured "
                 f"peak {p['gflops']:.0f} ({p['shape'][0]}-square): {limit}-bound at this shape")
    return text


def peak_line(peak: dict | None) -> str:
    """The run's measured device peaks in a sentence ("" when none was measured)."""
    if not peak or peak.get("status") != "ok":
        return f"Device peak: not measured ({peak.get('reason', '')})." if peak else ""
    parts = []
    for device, p in peak["peaks"].items():
        size = p["shape"][0]
        text = (f"{device} {units.gflops(p['gflops'])} at a {size}x{size} float32 matmul, "
                f"{p['bandwidth_gbs']:.1f} GB/s read")
        if p.get("device_name"):
            text += f" ({p['device_name']}" + (f"; datasheet {p['datasheet_gflops']:.0f} GFLOP/s float32)"
                                               if p.get("datasheet_gflops") else ")")
        parts.append(text)
    return "Device peak measured in this run (the share of peak divides by it): " + "; ".join(parts) + "."


def guard_cell(verdict: dict) -> str:
    """The accuracy-guard column: ``ok: auc 0.913 vs 0.885 ± 0.025``, ``LOW: ...`` or ``unguarded``."""
    if not verdict:
        return "-"
    if verdict["status"] == "unguarded":
        return "unguarded"
    ref = verdict["reference"]
    shown = f"{verdict.get('metric', 'accuracy')} {units.metric(verdict['value'])} vs {units.metric(ref['mean'])} ± {ref['sd']:.3f}"
    return f"ok: {shown}" if verdict["status"] == "ok" else f"{verdict['status'].upper()}: {shown}"


def guard_message(verdict: dict) -> str:
    """The guard's judgement in a sentence, with the reference's band."""
    if verdict.get("status") == "unguarded":
        return f"not guarded: {verdict.get('why') or verdict.get('message', '')}"
    ref = verdict["reference"]
    return (f"{verdict.get('metric', 'accuracy')} {units.metric(verdict['value'])} vs reference "
            f"{units.metric(ref['mean'])} ± {ref['sd']:.3f} ({len(ref['values'])} seeds; accepted "
            f"{units.metric(ref['low'])}-{units.metric(ref['high'])})")


def render(results: dict[str, CellResult], fmt: str = "markdown") -> str:
    """The run's table: one row per cell, over all of its repeats."""
    return render_rows(HEADERS, [row(r) for r in results.values()], fmt)


def guard_lines(results: dict[str, CellResult]) -> list[str]:
    """One line per cell the accuracy guard flagged, with its numbers."""
    from bench import guard

    return [f"{cell}: {v['status'].upper()}, {guard_message(v)}" for cell, v in guard.flagged(results).items()]


def guard_rule() -> str:
    """How the guard accepts a cell, from its constants."""
    from bench import guard

    return (f"accepted within a {units.percent(guard.CONFIDENCE)} prediction interval for a new seed, "
            f"mean ± t(n - 1) x sd x sqrt(1 + 1/n), never narrower than ± {guard.FLOOR:g}")


TARGET_HEADERS = ["workload", "strategy", "loop", "target", "seeds", "reached", "median time to target",
                  "interval", "median steps", "median step ms", "eval s per seed", "data"]


def target_rows(results: dict[str, CellResult]) -> list[list]:
    """One row per time-to-target cell: the median over seeds and its interval; seeds that
    never reached the target rank last ("not reached in N steps")."""
    rows = []
    for r in results.values():
        if not r.is_target:
            continue
        spec = r.spec
        if not r.times_to_target:
            rows.append([spec.workload, spec.strategy, spec.loop, spec.target, 0, "", "", "", "", "", "",
                         f"{r.status.upper()}: {r.reason}"])
            continue
        budget = r.target.get("max_steps", spec.max_steps)
        lo, hi, coverage = r.time_to_target_interval
        median = units.seconds(r.time_to_target)
        if median == "not reached":
            median = f"not reached in {budget} steps"
        steps = r.median_steps_to_target
        rows.append([
            spec.workload, spec.strategy, spec.replace(target=None, init_seed=None).label, spec.target, len(r.times_to_target),
            f"{r.reached} of {len(r.times_to_target)}", median,
            f"{units.seconds(lo)} to {units.seconds(hi)} ({units.share(coverage)})" if len(r.times_to_target) > 1
            else "one seed: none",
            "-" if steps is None or steps == float("inf") else f"{steps:.0f}", units.ms(r.median),
            f"{r.eval_s:.1f}", r.data_source,
        ])
    return rows


def target_note(results: dict[str, CellResult]) -> str:
    """How the time-to-target table was measured, from the cells' settings."""
    cells = [r for r in results.values() if r.is_target and r.target]
    if not cells:
        return ""
    t = cells[0].target
    goals = {(r.target["metric"], r.target["value"]) for r in cells}
    goal = f"the test {t['metric']} first reached {t['value']:g}" if len(goals) == 1 else \
        "the test metric first reached the cell's target"
    return (f"Training wall time (evaluations excluded) until {goal}, "
            f"evaluated every {t['eval_every']} steps, at most {t['max_steps']} steps; the median over training "
            "seeds, with the seeds' order statistics around it as its interval (coverage in brackets); a seed "
            "that never reached the target ranks slower than any that did.")


SCALING_HEADERS = ["workload", "loop", "strategy", "replicas", "kind", "examples/s", "1-replica examples/s",
                   "efficiency", "hardware"]


def scaling_rows(rows) -> list[list]:
    return [
        [r.workload, r.loop, r.strategy, r.replicas,
         f"{r.kind} ({'global batch fixed' if r.kind == 'strong' else 'per-replica batch fixed'})",
         f"{r.throughput:.0f}", f"{r.reference:.0f}", f"{r.efficiency:.2f}",
         "SHARED (virtual devices or local workers): not real scaling" if r.shared_hardware else "separate devices"]
        for r in rows
    ]


def render_scaling(results: dict[str, CellResult], fmt: str = "markdown") -> str:
    """The scaling-efficiency table ("" when no cell has 2+ replicas and a reference)."""
    from bench import scaling

    rows = scaling.efficiencies(list(results.values()))
    return render_rows(SCALING_HEADERS, scaling_rows(rows), fmt) if rows else ""


def run_summary(results: dict[str, CellResult], fmt: str = "table", overhead: list[dict] = (),
                interrupted: bool = False, peak: dict | None = None) -> str:
    """The run's table, then (except as JSON) the device peak, the guard's flags, the
    overhead and scaling."""
    parts = [render(results, fmt)]
    if fmt == "json":
        return parts[0]
    if interrupted:
        parts.append(interrupted_line(results))
    targets = target_rows(results)
    if targets:
        parts.append("Time to target: " + target_note(results) + "\n" + render_rows(TARGET_HEADERS, targets, fmt))
    if peak_line(peak):
        parts.append(peak_line(peak))
    flags = guard_lines(results)
    if flags:
        parts.append("Accuracy guard: outside the reference's normal spread (default fit over seeds):\n"
                     + "\n".join(f"  {line}" for line in flags))
    if overhead:
        parts.append("Harness overhead (the harness's cell against a bare TensorFlow loop in its own process, pairs "
                     "in lockstep; fit's timing callback against none, in one process):\n"
                     + "\n".join(f"  {line}" for r in overhead for line in overhead_lines(r)))
    scaling_table = render_scaling(results, fmt)
    if scaling_table:
        parts.append("Scaling efficiency = throughput(N replicas) / (N x throughput(1 replica, default)):\n"
                     + scaling_table)
    return "\n\n".join(parts)


def interrupted_line(results: dict[str, CellResult]) -> str:
    done = sum(1 for r in results.values() if r.status != "missing")
    return (f"INTERRUPTED: {done} of {len(results)} planned cells ran before the run was stopped; "
            "the rest are listed as missing.")


def outcome(record: dict) -> str:
    """A progress line's verdict on one finished process."""
    from bench.records import short_reason

    if record["status"] == "ok":
        line = f"ok, median {units.ms(record['step_time']['median'])} ms/step"
        t = record.get("target")
        if t:
            line += (f", {t['metric']} {t['value']:g} reached at step {t['steps']} after {units.seconds(t['time_s'])}"
                     if t["reached"] else f", {t['metric']} {t['value']:g} not reached in {t['steps_run']} steps")
        return line
    return f"{record['status']}: {short_reason(record)}"


# -- harness overhead ---------------------------------------------------------------------


def overhead_line(record: dict) -> str:
    """One line: what the harness adds to the median step, its interval, and the target."""
    if record.get("status") != "ok":
        return f"{record.get('cell')}: {record.get('status', '').upper()}: {record.get('reason', '')}"
    o = record["overhead"]
    if "pairs" in o:
        if not o.get("ratio_ci"):
            return f"{record['cell']}: {o['pairs']} pair(s): no interval"
        from bench import stats

        return (f"{record['cell']}: the harness adds {_against_target(o, 'to the median step')} (B/A of {o['pairs']} "
                f"interleaved process pairs; median step: bare TensorFlow {units.ms(stats.percentile(o['bare'], 50))} "
                f"ms, harness {units.ms(stats.percentile(o['harness'], 50))} ms)")
    added = _against_target(o, "to the median step")
    return (f"{record['cell']}: the harness adds {added} (median of {o['rounds']} rounds' harness/bare ratios, "
            f"{o['steps_per_round']} interleaved steps each; all steps: harness "
            f"{units.ms(o['harness']['median'])} ms, bare TensorFlow {units.ms(o['bare']['median'])} ms)")


def overhead_lines(record: dict) -> list[str]:
    """The custom loop's line, then (when measured) what the timing callback costs fit."""
    from bench.config import CellSpec

    lines = [overhead_line(record)]
    f = record.get("overhead", {}).get("fit")
    if f and "error" in f:
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
    from bench.overhead import TARGET

    return f"+{units.percent(TARGET)}"


# -- compare and check --------------------------------------------------------------------

COMPARE_HEADERS = [
    "cell", "runs A/B", "median A", "median B", "B/A [95% CI]", "throughput B/A",
    "metric", "A", "B", "delta", "noise from", "verdict",
]


def comparison_rows(cells) -> list[list]:
    rows = []
    for c in cells:
        if not c.verdict:
            rows.append([c.cell] + [""] * 10 + [c.presence])
            continue
        rows.append([
            c.cell, f"{c.a.processes}/{c.b.processes}", units.estimate(c.median_a, c.target),
            units.estimate(c.median_b, c.target),
            units.ratio(c.ratio, c.ratio_ci), units.ratio(c.throughput_ratio), c.metric if c.accuracy_a else "-",
            units.metric(c.accuracy_a), units.metric(c.accuracy_b), units.signed_metric(c.accuracy_delta),
            f"{c.noise_runs} stored runs" if c.noise_runs else "no history", c.verdict,
        ])
    return rows


def run_heading(side: str, run) -> str:
    interrupted = " INTERRUPTED: not every planned cell ran" if run.interrupted else ""
    return f"{side}: {run.label} (commit {run.commit}, {run.data.get('datetime', '?')}){interrupted}"


def machine_line(diff) -> str:
    if not diff:
        return "Same machine fingerprint."
    return "Machines differ in: " + "; ".join(f"{k}: {a} -> {b}" for k, a, b in diff)


HISTORY_NOTE = ("Stored runs of different times: each run is one unit, and the interval of B/A comes from the "
                "spread of each cell's run-level median over this machine's stored runs (at least "
                "{runs}). A cell without that history is undecided: compare at the same time with "
                "`python -m bench check --against REV` or `python -m bench ab`.")


def history_note() -> str:
    from bench.compare import MIN_HISTORY_RUNS

    return HISTORY_NOTE.format(runs=MIN_HISTORY_RUNS)


def regression_line(r) -> str:
    """One reason the newer run fails the check."""
    c = r.comparison
    if r.kind == "slower":
        what = "time to target" if c.target else "median"
        change = (f"B/A {units.ratio(c.ratio, c.ratio_ci)}, wholly above {units.times(1 + c.threshold)}"
                  if c.ratio else "B did not reach the target in most seeds")
        return (f"{c.cell}: slower, {what} {units.estimate(c.median_a, c.target)} -> "
                f"{units.estimate(c.median_b, c.target)} ({change})")
    if r.kind == "accuracy":
        return (f"{c.cell}: test {c.metric} {units.metric(c.accuracy_a)} -> {units.metric(c.accuracy_b)} "
                f"(lost {-c.accuracy_delta:.3f} > tolerance {r.tolerance})")
    return f"{c.cell}: learns worse than its reference now (accuracy guard: {guard_message(c.b.guard)})"


def undecided_line(c) -> str:
    """A cell the check could neither pass nor fail."""
    if c.ratio is None:
        return f"{c.cell}: neither run reached the target in most seeds"
    if c.ratio_ci is None:
        return f"{c.cell}: B/A {c.ratio:.2f}, no interval: fewer than the stored runs needed to know this cell's noise"
    return (f"{c.cell}: B/A {units.ratio(c.ratio, c.ratio_ci)} reaches past {units.times(1 + c.threshold)} or "
            f"{units.times(1 / (1 + c.threshold))} (noise from {c.noise_runs} stored runs)")


def check_lines(outcome, a_label: str, b_label: str, tolerance: float) -> list[str]:
    """check's closing lines: what failed, what it could not decide or find, or the pass."""
    from bench.compare import EXIT_PASS, EXIT_REGRESSION

    lines = []
    if outcome.failures:
        lines += [f"FAIL: {b_label} regressed against {a_label}:"] + [f"  {regression_line(r)}" for r in outcome.failures]
    if outcome.undecided:
        allowed = " (allowed by --allow-undecided)" if outcome.allow_undecided else ""
        lines += [f"UNDECIDED{allowed}: {len(outcome.undecided)} cells could not be judged:"]
        lines += [f"  {undecided_line(c)}" for c in outcome.undecided]
    if outcome.missing:
        allowed = " (allowed by --allow-missing)" if outcome.allow_missing else ""
        lines += [f"MISSING{allowed}: {len(outcome.missing)} cells the baseline measured did not run ok:"]
        lines += [f"  {c.cell}: {c.b.status + ': ' + c.b.reason if c.b else 'not in the checked run'}"
                  for c in outcome.missing]
    if outcome.differing:
        allowed = " (allowed by --allow-missing)" if outcome.allow_missing else ""
        lines += [f"NOT COMPARABLE{allowed}: {len(outcome.differing)} cells were measured differently in the two runs:"]
        lines += [f"  {c.cell}: {'; '.join(c.differences)}" for c in outcome.differing]
    status = outcome.exit_status
    if status == EXIT_PASS:
        lines.append(f"PASS: {outcome.checked} cells of {b_label} checked against {a_label}: none slower beyond "
                     f"its threshold, lost more than {tolerance} of its test metric, or newly fails the "
                     "accuracy guard.")
    elif status != EXIT_REGRESSION:
        lines.append(f"NOT PASSED (exit {status}): "
                     + ("nothing could be checked." if not outcome.checked else "see the cells above; "
                        "--allow-undecided / --allow-missing pass them knowingly."))
    return lines


# -- interleaved A/B ----------------------------------------------------------------------

PAIRED_HEADERS = ["cell", "pairs", "median A ms", "median B ms", "B/A [95% CI]", "p (smallest possible)", "verdict"]


def _side_median(c, k: int) -> str:
    from bench import stats

    medians = [pair[k]["step_time"]["median"] for pair in c.pairs if pair[k].get("status") == "ok"]
    return units.ms(stats.percentile(medians, 50)) if medians else "-"


def paired_rows(cells) -> list[list]:
    rows = []
    for c in cells:
        j = c.judgement
        verdict = c.verdict
        if c.skipped:
            verdict = f"skipped: {c.skipped}"
        elif c.failure:
            verdict = f"failed: {c.failure.get('status')}: {c.failure.get('reason', '')[:120]}"
        elif c.stopped:
            verdict += f" ({c.stopped})"
        p = "-" if j.p_value is None else f"{j.p_value:.3f} ({j.smallest_p:.3f})"
        rows.append([c.cell, j.pairs, _side_median(c, 0), _side_median(c, 1), units.ratio(j.ratio, j.interval), p,
                     verdict])
    return rows


def pair_line(cell, record_a: dict, record_b: dict) -> str:
    """A progress line: one pair's medians and the verdict so far."""
    def side(r):
        return f"{units.ms(r['step_time']['median'])} ms" if r.get("status") == "ok" else r.get("status", "?").upper()

    j = cell.judgement
    return (f"[pair {len(cell.pairs)}] {cell.cell}: A {side(record_a)}, B {side(record_b)}; "
            f"B/A so far {units.ratio(j.ratio, j.interval)}: {cell.verdict}")


def paired_lines(a, b, outcome) -> list[str]:
    """The closing lines of an interleaved comparison: the sides, then the verdict."""
    from bench.compare import EXIT_PASS

    lines = [f"A: {a.label}", f"B: {b.label}",
             "Each pair ran one process of each side at once, taking turns step by step (lockstep); the "
             "interval is Student's t on the pairs' log-ratios, the p a sign-flip test (exact; its smallest "
             "possible value in brackets)."]
    for verdict, what in (("slower", "SLOWER"), ("undecided", "UNDECIDED"), ("failed", "FAILED")):
        cells = outcome.having(verdict)
        if cells:
            lines.append(f"{what}: " + ", ".join(c.cell for c in cells))
    skipped = outcome.having("skipped")
    if skipped:
        lines.append(f"Not run here (skipped on both sides): {', '.join(c.cell for c in skipped)}")
    status = outcome.exit_status
    if status == EXIT_PASS:
        lines.append(f"PASS: {outcome.decided} cells decided, none slower.")
    else:
        lines.append(f"NOT PASSED (exit {status})" + ("" if outcome.decided else ": nothing was decided"))
    return lines


PLAN_HEADERS = ["cell", "pair sd", "from", "pairs needed", "about"]


def plan_rows(noise: dict, cells: list[str], effect: float, threshold: float, power: float) -> list[list]:
    """For each cell: its pair noise, and the pairs (and time) to catch ``effect``."""
    from bench.stats import pairs_to_detect

    rows = []
    for cell in cells:
        n = noise[cell]
        try:
            needed = pairs_to_detect(n.sd, effect, threshold, power=power)
            about = f"{needed * n.seconds_per_pair / 60:.1f} min" if n.seconds_per_pair else "-"
        except ValueError:
            needed, about = f"never: {units.percent(effect)} does not exceed the {units.percent(threshold)} band", "-"
        rows.append([cell, f"{n.sd:.3f}", f"{n.pairs} pairs in {n.runs} runs", needed, about])
    return rows


# -- tune ---------------------------------------------------------------------------------

TUNE_HEADERS = [
    "rank", "strategy", "loop", "steps/exec", "XLA", "runs", "mean ms/step", "median ms", "speed-up vs plain fit",
    "accuracy guard", "notes",
]


def tune_rows(ranked) -> list[list]:
    rows = []
    for k, r in enumerate(ranked, 1):
        res = r.result
        rows.append([
            k if r.accepted else "rejected", res.spec.strategy, res.spec.loop, r.steps_per_execution,
            "on" if res.spec.jit_compile else "off", res.processes, units.ms(res.mean_step), units.ms(res.median),
            f"{r.speedup:.2f}x" if r.speedup else "-", r.guard, "; ".join(res.first.get("loop", {}).get("notes", [])),
        ])
    return rows


def _tune_label(r) -> str:
    return f"{r.result.spec.loop} (steps/exec {r.steps_per_execution}, XLA {'on' if r.result.spec.jit_compile else 'off'})"


def tune_verdict(ranked, confirmed=None) -> str:
    """The fastest accepted configuration by mean step, and what the interleaved pairs say
    of its claim against plain fit (``confirmed``: the PairedCell, when it ran)."""
    accepted = [r for r in ranked if r.accepted]
    if not accepted:
        return "No configuration ran and passed the accuracy guard."
    best = accepted[0]
    text = f"Fastest by mean step: {best.result.spec.strategy} {_tune_label(best)}, {units.ms(best.result.mean_step)} ms/step"
    if best.result.spec.is_plain_fit:
        return text + ": plain fit itself."
    if best.speedup:
        text += f", {best.speedup:.2f}x plain fit"
    if confirmed is None:
        return text + ". Not confirmed: the interleaved comparison with plain fit did not run (--confirm-pairs 0)."
    j = confirmed.judgement
    claim = {"faster": "CONFIRMED faster than plain fit", "same": "not faster than plain fit (same within the band)",
             "slower": "SLOWER than plain fit"}.get(confirmed.verdict, f"{confirmed.verdict} against plain fit")
    return (f"{text}. Interleaved with plain fit ({j.pairs} pairs): B/A {units.ratio(j.ratio, j.interval)}, "
            f"{claim}.")
