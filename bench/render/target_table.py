"""The time-to-target table."""

from __future__ import annotations

from distbench.core.config import CellSpec
from distbench.render import summary, units
from distbench.render.tables import render_rows
from distbench.storage.results import CellResult

TARGET_HEADERS = ["workload", "strategy", "loop", "target", "seeds", "reached", "median time to target",
                  "interval", "median steps", "median step ms", "eval s per seed", "of it first step s", "data"]


def target_rows(results: dict[str, CellResult]) -> list[list]:
    """One row per time-to-target cell: the median over seeds and its interval; seeds that
    never reached the target rank last ("not reached in N steps")."""
    rows = []
    for r in results.values():
        if not r.is_target:
            continue
        spec = r.spec
        if not r.times_to_target:
            rows.append([spec.workload, spec.strategy, spec.loop, spec.target, 0, "", "", "", "", "", "", "",
                         f"{r.status.upper()}: {r.reason}"])
            continue
        budget = r.target.get("max_steps", spec.max_steps)
        lo, hi, coverage = r.time_to_target_interval
        median = units.seconds(r.time_to_target)
        if median == "not reached":
            median = f"not reached in {budget} steps"
        steps = r.median_steps_to_target
        seeds = len({CellSpec.from_dict(rep["config"]).training_seed for rep in r.repeats if rep.get("config")})
        lost = seeds - len(r.times_to_target)   # seeds none of whose processes measured: the median is the others'
        failed = f" ({lost} failed)" if lost > 0 else ""
        rows.append([
            spec.workload, spec.strategy, spec.replace(target=None, init_seed=None).label, spec.target,
            max(seeds, len(r.times_to_target)), f"{r.reached} of {max(seeds, len(r.times_to_target))}{failed}", median,
            f"{units.seconds(lo)} to {units.seconds(hi)} ({units.share(coverage)})" if len(r.times_to_target) > 1
            else "one seed: none",
            "-" if steps is None or steps == float("inf") else f"{steps:.0f}", units.ms(r.median),
            f"{r.eval_s:.1f}", "-" if r.first_step_s is None else f"{r.first_step_s:.1f}", r.data_source,
        ])
    return rows


def _short_reached(reached: str) -> str:
    """``2/3, 1 failed`` for ``2 of 3 (1 failed)``: within 120 columns beside a long cell name."""
    return reached.replace(" of ", "/").replace(" (", ", ").rstrip(")") if "failed" in reached else reached


def target_note(results: dict[str, CellResult]) -> str:
    """How the time-to-target table was measured, from the cells' settings."""
    cells = [r for r in results.values() if r.is_target and r.target]
    if not cells:
        return ""
    t = cells[0].target
    goals = {(r.target["metric"], r.target["value"]) for r in cells}
    goal = f"the test {t['metric']} first reached {t['value']:g}" if len(goals) == 1 else \
        "the test metric first reached the cell's target"
    return (f"Training wall time (evaluations excluded; the first step's tracing and compilation included, its "
            f"seconds apart as 'first step') until {goal}, "
            f"evaluated every {t['eval_every']} steps, at most {t['max_steps']} steps; the median over training "
            "seeds (a seed run more than once: the median of its processes), with the seeds' order statistics "
            "around it as its interval (coverage in brackets); a seed that never reached the target ranks slower "
            "than any that did.")


# The terminal's table (within 120 columns): rows under their workload and its data, the
# cells that did not run on grouped lines below it.
TARGET_TERMINAL = ["cell", "target", "reached", "median time", "interval", "steps", "step ms", "eval s",
                   "first step s"]


def target_text(results: dict[str, CellResult], fmt: str, compact: bool) -> str:
    """The time-to-target table: every column of :data:`TARGET_HEADERS` as ``fmt``, or, in
    a terminal (``compact``), grouped by workload within 120 columns."""
    rows = target_rows(results)
    if not compact or fmt != "table":
        return render_rows(TARGET_HEADERS, rows, fmt)
    groups: dict[str, list[list]] = {}
    absent: dict[str, dict[str, list[str]]] = {}
    for row, r in zip(rows, (r for r in results.values() if r.is_target)):
        if not r.times_to_target:
            absent.setdefault(r.status, {}).setdefault(r.reason, []).append(r.id)
            continue
        median = "not reached" if row[6].startswith("not reached") else row[6]   # the budget is in the note
        interval = "-" if row[7].startswith("not reached to not reached") else row[7]
        groups.setdefault(f"{row[0]} (data: {_data_words(row[-1])}):", []).append(
            [f"{row[1]}-{row[2]}", row[3], _short_reached(row[5]), median, interval, *row[8:12]])
    parts = [summary.grouped_table(list(groups.items()), TARGET_TERMINAL)] if groups else []
    for status, reasons in absent.items():
        parts += summary.grouped_lines(status, reasons)
    return "\n".join(parts)


def _data_words(source: str) -> str:
    """A record's data source as a reader knows it: ``workload`` is a workload's own
    ``data()`` (``workload:X``: given ``--data X``)."""
    kind, _, given = source.partition(":")
    if kind != "workload":
        return source
    return "the workload's data()" + (f", --data {given}" if given else "")
