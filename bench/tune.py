"""The fastest configuration of one workload: loops, steps per execution and XLA, ranked.

``python -m bench tune --workload W`` runs each candidate as an ordinary cell (its own
process, ``--repeats`` times), plus the accuracy guard's reference seeds, then ranks the
candidates that learn as well as the reference by median step time, each with its
speed-up over plain ``fit`` (steps_per_execution 1, no XLA) under the same strategy and
a hierarchical bootstrap interval. Pure apart from :func:`candidates`' registry lookups:
records in, rows out.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import guard, records, stats
from bench.config import CellSpec

STEPS_PER_EXECUTION = (1, 10, 50)   # fit only: train_on_batch and the custom loop run one step per call
JIT = (False, True)


def candidates(
    workload: str, strategy_names: list[str], loops: list[str], base: CellSpec, hw,
) -> tuple[list[CellSpec], list[str]]:
    """Every setting worth timing for ``workload`` under each strategy, plain fit first,
    and what was left out and why. XLA cells a strategy cannot run are kept: they are
    skipped with the reason, which the ranking lists."""
    import strategies

    cells, left_out = [], []
    for name in strategy_names:
        multi = strategies.get(name, devices=base.devices, workers=base.workers).multi_replica(hw)
        if multi and "fit" in loops:
            left_out.append(f"{name}: fit with steps_per_execution > 1 not tried: Keras 3 fails with it under "
                            "several replicas (keras-team/keras#19246)")
        for loop in loops:
            spes = STEPS_PER_EXECUTION if loop == "fit" and not multi else (1,)
            for jit in JIT:
                cells += [base.replace(workload=workload, strategy=name, loop=loop, steps_per_execution=spe,
                                       jit_compile=jit, init_seed=None) for spe in spes]
    return sorted(cells, key=lambda c: not _is_plain_fit(c.to_dict())), left_out


def _is_plain_fit(config: dict) -> bool:
    return config.get("loop") == "fit" and config.get("steps_per_execution", 1) == 1 and not config.get("jit_compile")


@dataclass(frozen=True)
class Ranked:
    cell: str
    strategy: str
    loop: str
    steps_per_execution: int          # what ran (fit may force 1 under several replicas)
    jit_compile: bool
    processes: int
    median: float                     # s/step, median over processes of per-process medians
    median_ci: tuple[float, float]
    speedup: float | None             # plain fit's median / this median (> 1: faster)
    speedup_ci: tuple[float, float] | None
    guard: str                        # the accuracy guard's status, "ok" when it passed
    accepted: bool                    # ran, and learns as well as the reference
    note: str = ""


def rank(cell_repeats: dict[str, list[dict]], cells: set[str] | None = None) -> list[Ranked]:
    """Accepted candidates fastest first, then those the guard rejected; cells that did not
    run are left out, and so are cells not in ``cells`` (the accuracy guard's seeds)."""
    plain = {_strategy(reps): reps for reps in cell_repeats.values()
             if records.ok(reps) and _is_plain_fit(reps[0]["config"]) and reps[0]["config"].get("init_seed") is None}
    rows = [_ranked(cell, reps, plain.get(_strategy(reps))) for cell, reps in cell_repeats.items()
            if records.ok(reps) and reps[0]["config"].get("init_seed") is None and reps[0]["config"].get("loop")
            and (cells is None or cell in cells)]
    return sorted(rows, key=lambda r: (not r.accepted, r.median))


def _strategy(repeats: list[dict]) -> str:
    return repeats[0]["config"]["strategy"]


def _ranked(cell: str, repeats: list[dict], plain: list[dict] | None) -> Ranked:
    ok = records.ok(repeats)
    cfg, first = ok[0]["config"], ok[0]
    pp = records.per_process_samples(ok)
    median = stats.median_of_medians(pp)
    speedup = speedup_ci = None
    if plain:
        base = records.per_process_samples(records.ok(plain))
        speedup = stats.median_of_medians(base) / median
        lo, hi = stats.hierarchical_bootstrap_ratio_ci(base, pp)   # this / plain, in step time
        speedup_ci = (1 / hi, 1 / lo)
    status = guard.verdict(ok).get("status", "unguarded")
    settings = first.get("loop", {}).get("settings", {})
    return Ranked(
        cell, cfg["strategy"], cfg["loop"], settings.get("steps_per_execution", cfg.get("steps_per_execution", 1)),
        bool(cfg.get("jit_compile")), len(pp), median, stats.hierarchical_bootstrap_median_ci(pp),
        speedup, speedup_ci, status, status not in ("low", "high"),
        "; ".join(first.get("loop", {}).get("notes", [])),
    )


def distinguishable(a: Ranked, b: Ranked) -> bool:
    """Whether two candidates' median intervals do not overlap."""
    return a.median_ci[1] < b.median_ci[0] or b.median_ci[1] < a.median_ci[0]
