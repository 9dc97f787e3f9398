"""Parent side: the fastest configuration of one workload: loops, steps per execution and XLA, ranked.

``distbench tune --workload W`` runs each candidate as an ordinary cell (its own
process, ``--repeats`` times), plus the accuracy guard's reference seeds, then ranks the
candidates that learn as well as the reference by mean time per step, each with its
speed-up over plain ``fit`` (steps_per_execution 1, no XLA) under the same strategy (a
point estimate: the winner's interval comes from its interleaved confirmation against plain
``fit``, :func:`confirm`). The candidates and the winner's confirmation are here;
the ranking (pure: results in, rows out) is :mod:`distbench.analysis.tuning`.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

from distbench import strategies
from distbench.analysis import guard
from distbench.analysis.tuning import Ranked
from distbench.core.config import CROSS_DEVICE_OPS, CellSpec
from distbench.core.errors import UserError
from distbench.session.interleave import (
    DEFAULT_MIN_PAIRS,
    Interleaved,
    PairedCell,
    PairsInterrupted,
    through,
)
from distbench.session.paired_run import save_pairs
from distbench.session.plan import read_only
from distbench.session.side import Side

STEPS_PER_EXECUTION = (1, 10, 50)   # fit only: train_on_batch and the custom loop run one step per call
JIT = (False, True)


def candidates(
    workload: str, strategy_names: list[str], loops: list[str], base: CellSpec, hw,
) -> tuple[list[CellSpec], list[str]]:
    """Every setting worth timing for ``workload`` under each strategy, plain fit first,
    and what was left out and why. XLA cells a strategy cannot run are kept: they are
    skipped with the reason, which the ranking lists."""
    cells, left_out = [], []
    for name in strategy_names:
        multi = strategies.get(name, devices=base.devices, workers=base.workers).multi_replica(hw)
        if multi and "fit" in loops:
            left_out.append(f"{name}: fit with steps_per_execution > 1 not tried: Keras 3 fails with it under "
                            "several replicas (keras-team/keras#19246)")
        for loop in loops:
            spes = STEPS_PER_EXECUTION if loop == "fit" and not multi else (1,)
            short = [spe for spe in spes if not base.holds(spe)]
            if short:
                left_out.append(f"{name}: fit with steps_per_execution {', '.join(map(str, short))} not tried: "
                                f"{base.epochs * base.steps_per_epoch} steps leave it no timed call after the cold "
                                f"start and {base.warmup_steps} warm-up steps (run more --steps-per-epoch)")
                spes = tuple(spe for spe in spes if spe not in short)
            uneven = [spe for spe in spes if base.rounding(spe)]
            if uneven:
                left_out.append(f"{name}: fit with steps_per_execution {', '.join(map(str, uneven))} not tried: it "
                                f"does not divide the {base.steps_per_epoch} steps of an epoch, which fit would round "
                                f"up to whole calls and train more (give --steps-per-epoch a multiple of "
                                f"{max(STEPS_PER_EXECUTION)})")
                spes = tuple(spe for spe in spes if spe not in uneven)
            for jit in JIT:
                cells += [read_only(base.replace(workload=workload, strategy=name, loop=loop, steps_per_execution=spe,
                                                 jit_compile=jit, init_seed=None)) for spe in spes]
            if name == "mirrored" and len(hw.gpus) >= 2:
                # Where NCCL fails or is slow (containers, PCIe without peer access), the
                # other all-reduces may win: an axis of their own, plain settings otherwise.
                cells += [read_only(base.replace(workload=workload, strategy=name, loop=loop, init_seed=None,
                                                 cross_device_ops=ops)) for ops in CROSS_DEVICE_OPS if ops != "auto"]
    return sorted(cells, key=lambda c: not c.is_plain_fit), left_out


def confirmation(ranked: list[Ranked]):
    """The winner against plain fit, as the two sides of an interleaved comparison (the
    evidence for the claim), or None when the winner is plain fit or nothing was accepted."""
    accepted = [r for r in ranked if r.accepted]
    if not accepted:
        return None
    best = accepted[0].result.spec
    plain = (accepted[0].plain.spec if accepted[0].plain
             else best.replace(loop="fit", steps_per_execution=1, jit_compile=False))
    if best.id == plain.id:
        return None
    changes = {"loop": best.loop, "steps_per_execution": best.steps_per_execution, "jit_compile": best.jit_compile,
               "cross_device_ops": best.cross_device_ops, "keras": best.keras}
    return plain, Side("A", "plain fit"), Side("B", f"fastest: {best.label}", changes)


def plan(session, workload: str, strategy_names: list[str], loops: list[str],
         keras: str = "keras3", loops_from: tuple[str, list[str]] | None = None) -> tuple[list[CellSpec], list[str]]:
    """Makes ``session``'s plan the candidates in the Keras flavour ``keras`` (with the
    guard's seeds); the candidates and what was left out and why. ``loops_from``: the
    matrix file that chose ``loops`` and every loop there is (the ones it leaves out are said)."""
    base = session.base.replace(keras=keras)
    cells, left_out = candidates(workload, strategy_names, loops, base, session.suite.hw)
    if loops_from and set(loops_from[1]) - set(loops):
        left_out.append(f"loops {', '.join(n for n in loops_from[1] if n not in loops)} not tried: the matrix file "
                        f"{loops_from[0]} selects {', '.join(loops)} (--loop names the loops to tune)")
    session.plan = guard.with_replicates(cells, session.values["guard_seeds"])
    return cells, left_out


class Confirmed(NamedTuple):
    cell: PairedCell | None   # None: no confirmation ran
    saved: str | None = None      # where its pairs were saved, as a run of their own
    unsaved: str | None = None    # why they were not (a full disk): said after the verdict


def confirm(session, sides, pairs: int, progress=None) -> Confirmed:
    """The interleaved test of the winner against plain fit (``sides`` from
    :func:`confirmation`), at most ``pairs`` pairs, saved as a run of their own (``plan``
    and ``report`` read them); on Ctrl-C the pairs that finished are saved, marked so."""
    if sides is None or pairs < 2:
        return Confirmed(None)
    plain, a, b = sides
    suite = session.suite
    engine = Interleaved(a, b, through(suite),
                         min_pairs=min(DEFAULT_MIN_PAIRS, pairs), max_pairs=pairs, progress=progress)
    try:
        paired = engine.run([plain], suite.skip_reason)
    except PairsInterrupted as stop:
        with contextlib.suppress(UserError):
            save_pairs(session, engine, a, b, stop.cells, interrupted=True, stored={"tune": True})
        raise
    try:
        return Confirmed(paired[0], save_pairs(session, engine, a, b, paired, stored={"tune": True}))
    except UserError as exc:
        return Confirmed(paired[0], unsaved=str(exc))
