"""The time-to-target table."""

from __future__ import annotations

from distbench.render import units
from distbench.storage.results import CellResult

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
