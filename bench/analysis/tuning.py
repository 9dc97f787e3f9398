"""Tune's ranking: candidates that learn as well as the reference, fastest first. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from distbench.analysis import guard
from distbench.storage.results import CellResult


@dataclass(frozen=True)
class Ranked:
    result: CellResult
    speedup: float | None             # plain fit's mean step / this mean step (> 1: faster)
    plain: CellResult | None = None   # that plain fit (None: none measured whole)

    @property
    def steps_per_execution(self) -> int:
        """What ran (fit forces 1 under several replicas)."""
        return self.result.loop_settings.get("steps_per_execution", self.result.spec.steps_per_execution)

    @property
    def guard(self) -> str:
        return self.result.guard.get("status", "unguarded")

    @property
    def accepted(self) -> bool:
        """Ran, and learns at least as well as the reference: outside the guard's band on the
        metric's good side (a lower MAE, a higher accuracy) is accepted, as ``run`` shows it."""
        return not guard.worse(self.result.guard)


def rank(results: dict[str, CellResult], cells: set[str] | None = None) -> list[Ranked]:
    """Accepted candidates fastest first (by mean time per step, like for like), then those
    the guard rejected; cells that did not run, and cells not in ``cells`` (the guard's
    seeds), are left out. The ranking is a shortlist: :func:`confirmation` says how the
    winner's claim is tested."""
    candidates = [r for cell, r in results.items() if r.whole and r.spec.loop and not r.spec.is_replicate
                  and (cells is None or cell in cells)]   # a candidate a process of which failed: not ranked
    # Plain fit as this run measured it, a candidate or not (the guard's reference, when
    # --loop leaves fit out of the candidates): the first in the plan's order, the base
    # settings' (mirrored's other all-reduces are candidates of their own, not plain fit).
    plain: dict[tuple[str, str], CellResult] = {}   # (strategy, Keras flavour): the guard's Keras 3 is not tf_keras'
    for r in results.values():
        if r.spec.is_plain_fit and not r.spec.is_replicate:
            plain.setdefault((r.spec.strategy, r.spec.keras), r)
    rows = []
    for r in candidates:
        against = plain.get((r.spec.strategy, r.spec.keras))
        against = against if against is not None and against.whole else None   # crashed: no speed-up
        rows.append(Ranked(r, against.mean_step / r.mean_step if against else None, against))
    return sorted(rows, key=lambda r: (not r.accepted, r.result.mean_step))
