"""The run's table and the lines under it: what ``run`` and the pytest front end print and the report shows."""

from __future__ import annotations

from distbench.analysis import scaling
from distbench.core.records import short_reason
from distbench.render import summary, units
from distbench.render.guard_text import guard_cell, guard_lines, power_lines
from distbench.render.overhead_lines import overhead_lines
from distbench.render.run_data import run_csv, run_json
from distbench.render.summary import render_summary
from distbench.render.tables import render_rows
from distbench.render.target_table import target_note, target_rows, target_text
from distbench.storage.results import CellResult

HEADERS = [
    "workload", "strategy", "replicas", "loop", "runs", "median ms", "95% CI ms", "p90 ms", "cv",
    "throughput", "input wait", "FLOPs: per step, achieved (share of peak)", "test metric", "accuracy guard", "peak RSS MiB", "data", "notes",
]


def row(result: CellResult) -> list:
    """One cell's row: the median over processes, its interval, and what the cell delivered.

    ``p90`` and ``cv`` describe every steady step of every process together.
    """
    spec = result.spec
    base = [spec.workload, spec.strategy]
    loop = spec.label + (f"@{result.side}" if result.side else "")   # an A/B run's side
    if not result.measured:
        label = "SKIPPED" if result.status == "skipped" else result.status.upper()
        return base + ["", loop] + [""] * 12 + [f"{label}: {result.reason}"]
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
    if result.short:
        notes.append(f"SHORT: {result.ran} of {result.planned} planned repeats ran (the run was interrupted)")
    if result.timing_cost:
        notes.append(timing_cost_note(result.timing_cost))
    return base + [
        result.replicas or "", loop, result.processes, units.ms(result.median), units.interval_cell(result),
        units.ms(result.pooled.p90), f"{result.pooled.cv:.2f}", throughput(result), summary.input_cell(result),
        compute_cell(result),
        accuracy_cell(result),
        guard_cell(result.guard), units.mib(result.peak_rss_bytes), result.data_source, "; ".join(notes),
    ]


def timing_cost_note(cost: dict) -> str:
    """``timing callback: fit +2.1% [-0.4%, +4.0%] wall time with it (5 pairs); untimed fit
    10.7 ms/step``: what the per-step timing costs fit, and what untimed fit takes a step,
    host work between steps included (the cell's step times leave that out)."""
    low, high = cost["interval"]
    # Over processes, the interval is their medians' order statistics: two span 50%, not 95%.
    unit = f"{cost['processes']} processes' medians" if cost["processes"] > 1 else f"{cost['pairs']} pairs"
    covers = f", {units.share(cost['coverage'])} coverage" if cost.get("coverage") else ""
    return (f"timing callback: fit {units.percent_change(cost['ratio'])} [{units.percent_change(low)}, "
            f"{units.percent_change(high)}] wall time with it ({unit}{covers}); untimed fit "
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
    """The test metric the summary shows (the guard's), named: ``auc 0.654``; accuracy with
    the majority-class share beside it (``accuracy 0.930 (majority 0.930)``), so that a
    figure on an imbalanced set reads as what it is."""
    metric, value = summary.shown_metric(result)
    if value is None:
        return "-"
    text = f"{metric} {units.metric(value)}"
    if metric == "accuracy" and result.majority_share is not None:
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
        devices = result.peak.get("devices", 1)
        text += f" ({units.share(result.share_of_peak)} of {f'{devices} x ' if devices > 1 else ''}" \
                f"{result.peak['gflops']:.0f})"
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


def environment_line(machine_info: dict) -> str:
    """``TensorFlow 2.21.0, Keras 3.15.1, Python 3.11.7; 2 CPUs (model), GPUs: none``: a
    stored run's software and hardware."""
    info = machine_info.get("distbench", {})
    gpus = ", ".join(info.get("gpus") or []) or "none"
    return (f"TensorFlow {info.get('tensorflow')}, Keras {info.get('keras')}, Python {info.get('python')}; "
            f"{info.get('cpu_count')} CPUs ({info.get('cpu_model')}), GPUs: {gpus}")


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
    line = "Device peak measured in this run (the share of peak divides by it): " + "; ".join(parts) + "."
    found = peak.get("disturbance") or {}
    if found.get("disturbed"):
        line += (f" DISTURBED: other processes used {found['others_cpu']:.0%} of the CPU while it was measured; "
                 "a peak measured low makes every share of it read high.")
    return line


def render(results: dict[str, CellResult], fmt: str = "markdown") -> str:
    """The run's table: one row per cell, over all of its repeats."""
    return render_rows(HEADERS, [row(r) for r in results.values()], fmt)


SCALING_HEADERS = ["workload", "loop", "strategy", "replicas", "kind", "examples/s", "1-replica examples/s",
                   "efficiency", "hardware"]


COMPACT_SCALING_HEADERS = ["workload", "loop", "strategy", "replicas", "kind", "examples/s", "1 replica",
                           "efficiency", "hardware"]


def scaling_rows(rows, compact: bool = False) -> list[list]:
    """Rows of the scaling table (``compact``: short words, explained in the heading)."""
    return [
        [r.workload, r.loop, f"{r.strategy}@{r.side}" if r.side else r.strategy, r.replicas,
         r.kind if compact else f"{r.kind} ({'global batch fixed' if r.kind == 'strong' else 'per-replica batch fixed'})",
         f"{r.throughput:.0f}", f"{r.reference:.0f}", f"{r.efficiency:.2f}",
         ("shared" if compact else "SHARED (virtual devices or local workers): not real scaling")
         if r.shared_hardware else "separate devices"]
        for r in rows
    ]


def render_scaling(results: dict[str, CellResult], fmt: str = "markdown", compact: bool = False) -> str:
    """The scaling-efficiency table ("" when no cell has 2+ replicas and a reference)."""
    rows = scaling.efficiencies(list(results.values()))
    headers = COMPACT_SCALING_HEADERS if compact else SCALING_HEADERS
    return render_rows(headers, scaling_rows(rows, compact), fmt) if rows else ""


def run_summary(results: dict[str, CellResult], fmt: str = "table", overhead: list[dict] = (),
                interrupted: bool = False, peak: dict | None = None, full: bool = True) -> str:
    """The run's table, then the device peak, the guard's flags, the overhead and scaling;
    as JSON or CSV, the cells' figures as numbers (:mod:`distbench.render.run_data`). ``full=False`` (a terminal's table format): the summary that
    fits 120 columns instead of the full table, prose wrapped to it."""
    compact = fmt == "table" and not full
    if compact:
        return _sections(results, render_summary(results), fmt, overhead, interrupted, peak, True)
    if fmt == "json":
        return run_json(results, overhead, interrupted, peak)
    if fmt == "csv":
        return run_csv(results)
    return _sections(results, render(results, fmt), fmt, overhead, interrupted, peak, False)


def _sections(results, table: str, fmt: str, overhead, interrupted: bool, peak, compact: bool) -> str:
    prose = summary.wrap if compact else (lambda text: text)
    parts = [table]
    if interrupted:
        parts.append(prose(interrupted_line(results)))
    if target_rows(results):
        note = target_note(results)
        parts.append((prose("Time to target: " + note) + "\n" if note else "") + target_text(results, fmt, compact))
    if peak_line(peak):
        parts.append(prose(peak_line(peak)))
    flags = guard_lines(results)
    if flags:
        parts.append(prose("Accuracy guard: outside the reference's normal spread (default fit over seeds):\n"
                           + "\n".join(f"  {line}" for line in flags)))
    powers = power_lines(results)
    if powers:
        parts.append(prose("Accuracy guard's power: " + " ".join(powers)))
    if overhead:
        parts.append(prose("Harness overhead (the harness's cell against a bare TensorFlow loop in its own process, "
                           "pairs in lockstep; fit's timing callback against none, in one process):\n"
                           + "\n".join(f"  {line}" for r in overhead for line in overhead_lines(r))))
    scaling_table = render_scaling(results, fmt, compact)
    if scaling_table:
        parts.append(prose("Scaling efficiency = throughput(N replicas) / (N x throughput(1 replica, default))"
                           + ("; strong: global batch fixed, weak: per-replica batch fixed; shared: virtual devices "
                              "or local workers on one device, the cost of distribution, not scaling" if compact
                              else "") + ":") + "\n" + scaling_table)
    return "\n\n".join(parts)


def interrupted_line(results: dict[str, CellResult]) -> str:
    """What an interruption left out: ``INTERRUPTED: 5 of 8 planned processes ran before the
    run was stopped; a, b have 1 of 2 repeats; c did not run.`` A run stored before its plan
    was counts cells, and cannot name the short ones."""
    cells = list(results.values())
    never = [r.id for r in cells if not r.ran]
    if any(r.planned is None for r in cells):
        started = len(cells) - len(never)
        return (f"INTERRUPTED: {started} of {len(cells)} planned cells started before the run was stopped"
                + (f"; {', '.join(never)} did not run" if never else "")
                + "; this run did not store its planned repeats, so a started cell may be short of them.")
    short: dict[tuple[int, int], list[str]] = {}
    for r in cells:
        if r.ran and r.short:
            short.setdefault((r.ran, r.planned), []).append(r.id)
    parts = [f"INTERRUPTED: {sum(r.ran for r in cells)} of {sum(r.planned for r in cells)} planned processes ran "
             "before the run was stopped"]
    parts += [f"{', '.join(ids)} {'has' if len(ids) == 1 else 'have'} {ran} of {planned} repeats"
              for (ran, planned), ids in short.items()]
    if never:
        parts.append(f"{', '.join(never)} did not run")
    return "; ".join(parts) + "."


def elsewhere_line(run) -> str:
    """What a report of another machine's run, stored in this folder, says of it."""
    return (f"Measured on machine {run.measured_on}, by its stored fingerprint, not {run.machine_id}, whose folder "
            f"holds it (another machine's run copied in?): reported on its own, without {run.machine_id}'s history.")


def progress_line(k: int, n: int, spec, record: dict, elapsed: float) -> str:
    """One finished process while a run goes on: ``[3/21] reuters_cnn-virtual-fit: ok, ...``."""
    return f"[{k}/{n}] {spec.process_id}: {outcome(record)} ({elapsed:.0f} s elapsed)"


def overhead_progress_line(spec) -> str:
    return f"[overhead] {spec.id}: the harness's cell against a bare TensorFlow loop, process pairs ..."


NOT_SAVED = ("Not saved: this process is a task of a cluster (TF_CONFIG's, or a SLURM job step's) other than its "
             "chief; the chief saves the run.")
INTERRUPTED = "distbench: interrupted; the cells that finished were saved, marked as an interrupted run"
INTERRUPTED_UNSAVED = "distbench: interrupted"


def error_line(error) -> str:
    """Bad input, or a run that cannot go on: one line on stderr."""
    return f"distbench: error: {error}"


def outcome(record: dict) -> str:
    """A progress line's verdict on one finished process."""
    if record["status"] == "ok":
        line = f"ok, median {units.ms(record['step_time']['median'])} ms/step"
        t = record.get("target")
        if t:
            line += (f", {t['metric']} {t['value']:g} reached at step {t['steps']} after {units.seconds(t['time_s'])}"
                     if t["reached"] else f", {t['metric']} {t['value']:g} not reached in {t['steps_run']} steps")
        return line
    return f"{record['status']}: {short_reason(record)}"


# -- harness overhead ---------------------------------------------------------------------
