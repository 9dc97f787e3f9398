"""The run in a terminal: a summary that fits 120 columns (the full table is the report's,
and ``--full-table``'s)."""

from __future__ import annotations

import os
import re
import textwrap

from distbench.analysis import guard
from distbench.render import units
from distbench.render.tables import render_rows
from distbench.storage.results import CellResult

WIDTH = 120
HEADERS = ["cell", "runs", "median ms", "95% CI ms", "throughput", "of peak", "input wait", "test metric", "guard"]


def summary_rows(results: dict[str, CellResult]) -> list[list]:
    """One row per measured cell (the guard's extra seeds left out: they are the guard's)."""
    rows = []
    for r in _shown(results):
        metric, value = shown_metric(r)
        rows.append([
            r.id, _runs(r), units.ms(r.median), _interval(r), _throughput(r), _share(r),
            input_cell(r), f"{metric} {units.metric(value)}" if value is not None else "-", _guard(r),
        ])
    return rows


def _runs(r: CellResult) -> str | int:
    """The processes measured, ``2 of 3`` when some crashed or failed (listed below the table)
    or an interruption left the cell short of its planned repeats (the INTERRUPTED line names it)."""
    return r.processes if r.whole and not r.short else f"{r.processes} of {max(len(r.repeats), r.planned or 0)}"


def _shown(results: dict[str, CellResult]) -> list[CellResult]:
    """The cells a summary has a row for: measured, not the guard's extra seeds."""
    seeds = guard_seeds(results)
    return [r for r in results.values() if r.measured and r.id not in seeds]


def guard_seeds(results: dict[str, CellResult]) -> set[str]:
    """The accuracy guard's extra seeds: cells of a training seed of their own beside their
    plain cell. A run's own ``--init-seed N`` (or an ``ab`` side's) has no plain cell beside
    it: its cells are the run's, and a run of them alone had read "No cell was measured"."""
    plain = {r.spec.comparable_key for r in results.values() if r.measured and not r.spec.is_replicate}
    return {r.id for r in results.values() if r.measured and r.spec.is_replicate and r.spec.comparable_key in plain}


def shown_metric(r: CellResult) -> tuple[str, float | None]:
    """The test metric a row shows: the guard's, else accuracy."""
    if r.guard_value is not None:
        return r.guard_metric, r.guard_value
    return "accuracy", r.accuracy


def _share(r: CellResult) -> str:
    return units.share(r.share_of_peak) if r.share_of_peak is not None else "-"


def _throughput(r: CellResult, short: bool = False) -> str:
    """Examples per second for a training cell; GFLOP/s on its primary device for matmul
    (``short``: whole GFLOP/s from 100 up)."""
    if r.matmul:
        gflops = r.matmul["devices"][r.matmul["primary_device"]]["gflops"]
        return f"{gflops:.0f} GFLOP/s" if short and gflops >= 100 else units.gflops(gflops)
    return f"{r.throughput:.0f} ex/s" if r.throughput else "-"


def input_cell(r: CellResult) -> str:
    """``4%``, ``<=12%`` (fit's upper bound), ``93% BOUND`` (input-bound), ``<=30% BOUND?``
    (an upper bound above the threshold: may be input-bound), or ``-``."""
    found = r.input_wait
    if not found:
        return "-"
    text = ("<=" if found["at_most"] else "") + units.percent(found["share"])
    if not found["input_bound"]:
        return text
    return f"{text} BOUND?" if found["at_most"] else f"{text} BOUND"


def _guard(r: CellResult) -> str:
    status = (r.guard or {}).get("status")
    if not status:
        return "-"
    if status == "underpowered":
        return "low power"
    if status == "chance":
        return "REF AT CHANCE"
    if status in ("ok", "unguarded"):
        return status
    return status.upper() if guard.worse(r.guard) else "better"


def not_measured_lines(results: dict[str, CellResult]) -> list[str]:
    """Cells that did not run, or not in every process, grouped by reason: ``skipped (3): no
    GPU ...: cell, cell``, ``PARTLY FAILED (1): 1 of 3 processes: worker ...: cell``."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in results.values():
        if not r.measured:
            failed = [rep for rep in r.repeats if rep.get("status") == "error"]
            # The count in the line is of cells: say how many of a cell's processes failed.
            reason = f"all {len(failed)} processes, the first: {r.reason}" if len(failed) > 1 else r.reason
            groups.setdefault((r.status, reason), []).append(r.id)
        elif r.failed_repeats:   # measured on what was left: its row says "2 of 3", this line why
            groups.setdefault((r.status, f"{r.failed_repeats} of {len(r.repeats)} processes: {r.reason}"),
                              []).append(r.id)
    lines = []
    for (status, reason), cells in groups.items():
        lines += grouped_lines(status.upper() if status != "skipped" else "skipped", {reason: cells})
    return lines


def render_summary(results: dict[str, CellResult], every_column: str = "`distbench report` or --full-table") -> str:
    """The summary table, one block of rows per workload under a line naming it and its
    test metric (a row is the rest of the cell's id), then the cells that did not run;
    ``every_column``: where the reader finds the rest (a report names its own page)."""
    groups = _groups(results)
    parts = [grouped_table(groups, TERMINAL_HEADERS)] if groups else ["No cell was measured."]
    replicates = len(guard_seeds(results))
    if replicates:
        parts.append(f"({replicates} more processes: the accuracy guard's reference seeds; {every_column} "
                     "shows every column)")
    parts += note_lines(results) + disturbed_lines(_shown(results)) + not_measured_lines(results)
    return "\n".join(parts)


LOCAL_PROCESSES = ("local processes share this machine's CPUs: the cost of distributing across processes, not "
                   "scaling")
LOCAL_ADDRESS = re.compile(r"\b(?:127\.0\.0\.1|localhost):\d+")   # a local cluster's ports: new each process


def note_lines(results: dict[str, CellResult]) -> list[str]:
    """What the strategies said of the cells, once per note, where every process of a cell
    said it (``note (2): no GPU found: MirroredStrategy runs one replica on the CPU: ...``;
    a note naming a process's own ports is not one, even when one process ran)."""
    groups: dict[str, list[str]] = {}
    for r in _shown(results):
        # Virtual cells' notes say it; one multi_worker process (--workers 1) distributes nothing.
        alone = r.strategy_info.get("strategy") == "multi_worker" and r.strategy_info.get("workers") == 1
        if r.shared_hardware and not r.strategy_info.get("virtual_devices") and not alone:
            groups.setdefault(LOCAL_PROCESSES, []).append(r.id)
        said = [(rep.get("strategy") or {}).get("notes") or [] for rep in r.ok]
        for note in (n for n in said[0] if all(n in other for other in said[1:])) if said else ():
            if not LOCAL_ADDRESS.search(note):
                groups.setdefault(note, []).append(r.id)
    return grouped_lines("note", groups)


def disturbed_lines(results: list[CellResult], side: str = "") -> list[str]:
    """``DISTURBED (n): ...: cells``: the cells timed while other processes used the CPU
    (the full table gives each cell's share); ``side``: ``in A`` of a comparison."""
    hit = [r for r in results if r.disturbed]
    if not hit:
        return []
    records = [d for r in hit for d in r.disturbed]
    taken = [f"other processes used {_span([d['others_cpu'] for d in records])} of the CPU"]
    if any(d.get("steal", 0) >= 0.01 for d in records):   # a hypervisor's other guests (marks above 5%)
        taken.append(f"the hypervisor gave {_span([d.get('steal', 0) for d in records])} to other guests")
    reason = f"{' and '.join(taken)} while timed: steps may be slower than this machine's own"
    return grouped_lines(f"DISTURBED{' ' + side if side else ''}", {reason: [r.id for r in hit]})


def _span(shares: list[float]) -> str:
    low, high = units.percent(min(shares)), units.percent(max(shares))
    return low if low == high else f"{low}-{high}"   # as printed: 75%, not 75%-75%


TERMINAL_HEADERS = ["cell", "runs", "median ms", "95% CI ms", "throughput", "of peak", "input wait", "test", "guard"]


def _groups(results: dict[str, CellResult]) -> list[tuple[str, list[list]]]:
    """(heading, rows) per workload, in the run's order; a row's first column is its id
    without the workload's name, its test column the metric's value alone."""
    groups: dict[str, tuple[list[str], list[list]]] = {}
    for r in _shown(results):
        workload = r.spec.workload
        metrics, rows = groups.setdefault(workload, ([], []))
        prefix = f"{workload}-"
        metric, value = shown_metric(r)
        if value is not None and metric not in metrics:
            metrics.append(metric)
        rows.append([r.id[len(prefix):] if r.id.startswith(prefix) else r.id, _runs(r), units.ms_short(r.median),
                     _interval(r, short=True), _throughput(r, short=True), _share(r), input_cell(r),
                     units.metric(value), _guard(r)])
    return [(f"{workload}" + (f" (test: {', '.join(metrics)})" if metrics else "") + ":", rows)
            for workload, (metrics, rows) in groups.items()]


def grouped_table(groups: list[tuple[str, list[list]]], headers: list[str]) -> str:
    """A table within :data:`WIDTH`, each group's heading line above its rows: labels too
    long for what the other columns leave are wrapped after their dashes onto continuation
    rows (never narrower than :data:`MIN_LABEL`), and headings wrapped as prose."""
    rows = [row for _, rows in groups for row in rows]
    over = max(len(line) for line in render_rows(headers, rows, tight=True).splitlines()) - WIDTH
    if over > 0:
        longest = max(len(row[0]) for row in rows)
        room = max(MIN_LABEL, longest - over)
        groups = [(heading, [part for row in rows for part in _wrapped(row, room)]) for heading, rows in groups]
    return _table([(wrap(heading), rows) for heading, rows in groups], headers)


def short_id(cell: str) -> str:
    """The id without its workload's name (a grouped row's label), or the whole id."""
    workload, _, rest = cell.partition("-")
    return rest or cell


def grouped_lines(label: str, groups: dict[str, list[str]]) -> list[str]:
    """``LABEL (n): reason: cell, cell`` per reason, wrapped to :data:`WIDTH` with each
    cell's id whole."""
    lines = []
    for reason, cells in groups.items():
        lines += textwrap.wrap(f"{label} ({len(cells)}): {reason}: {', '.join(cells)}", WIDTH,
                               subsequent_indent="    ", break_on_hyphens=False)
    return lines


MIN_LABEL = 16


def _wrapped(row: list, room: int) -> list[list]:
    """``row``, then a row per further piece of its label."""
    pieces = split_id(row[0], room)
    return [[pieces[0], *row[1:]]] + [[piece] + [""] * (len(row) - 1) for piece in pieces[1:]]


def split_id(label: str, room: int) -> list[str]:
    """``label`` in pieces of at most ``room`` characters, each cut after a dash where one
    falls in it (``multi_worker-`` / ``train_on_batch``), else at ``room``."""
    pieces = []
    while len(label) > room:
        cut = label.rfind("-", 0, room) + 1 or room
        pieces.append(label[:cut])
        label = label[cut:]
    return pieces + [label]


def _table(groups: list[tuple[str, list[list]]], headers: list[str]) -> str:
    """One table over every group's rows, each group's heading line above its first row."""
    rows = [row for _, rows in groups for row in rows]
    lines = render_rows(headers, rows, tight=True).splitlines()
    out, at = lines[:2], 2
    for heading, group in groups:
        out += heading.splitlines()
        out += lines[at:at + len(group)]
        at += len(group)
    return "\n".join(out)


def wrap(text: str) -> str:
    """Prose wrapped to the summary's width, line by line (never a table: they are made to fit)."""
    return "\n".join(line if len(line) <= WIDTH else textwrap.fill(line, WIDTH, subsequent_indent="    ",
                                                                   break_on_hyphens=False)   # ids stay whole
                     for line in text.splitlines())


def wrap_lines(lines: list[str]) -> list[str]:
    """A verdict's closing lines for a terminal: each wrapped to :data:`WIDTH` onto indented
    continuation lines, except those already indented (a process's failure with its whole
    reason, which stays one line to be read or searched as it was raised)."""
    return [part for line in lines for part in (wrap(line).splitlines() if not line[:1].isspace() else [line])]


def saved_line(path) -> str:
    """``Saved results/<machine>/0007_....json``: relative to the working folder when the
    run is inside it (the user's own ``results/``), else the whole path."""
    path, here = os.path.realpath(path), os.path.realpath(os.getcwd())
    inside = os.path.commonpath([path, here]) == here
    return f"Saved {os.path.relpath(path, here) if inside else path}"


def _interval(r, short: bool = False) -> str:
    return units.interval_cell(r, short)


def pooled_line(results: dict) -> str | None:
    """Under pytest, where a cell ran in several processes: which of the two medians printed
    is which (pytest-benchmark's and distbench's differed, neither said why)."""
    if not any(r.processes > 1 for r in results.values() if r.measured):
        return None
    return wrap("pytest-benchmark's table pools the steps of a cell's processes; distbench's median and interval "
                "are over the processes (each one's median), the unit that varies.")
