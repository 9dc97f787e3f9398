"""The accuracy guard in words: a cell's judgement (its column and its sentence), the run's
flagged cells, what the guard could flag (its power), and what it found when it flagged none."""

from __future__ import annotations

from distbench.analysis import guard
from distbench.render import units
from distbench.storage.results import CellResult


def guard_cell(verdict: dict) -> str:
    """The accuracy-guard column: ``ok: auc 0.913 vs 0.885 ± 0.025``, ``LOW: ...`` or ``unguarded``."""
    if not verdict:
        return "-"
    if verdict["status"] == "unguarded":
        return "unguarded"
    ref = verdict["reference"]
    shown = f"{verdict.get('metric', 'accuracy')} {units.metric(verdict['value'])} in {_band(ref)}"
    if verdict["status"] == "ok":
        return f"ok: {shown}"
    if verdict["status"] == "underpowered":
        return f"too little power: {shown}"
    if verdict["status"] == "chance":
        return f"REFERENCE AT CHANCE: {shown}"
    if not guard.worse(verdict):
        return f"better: {shown}"   # outside the band on the metric's good side: shown, not flagged
    return f"{verdict['status'].upper()}: {shown}"


def guard_message(verdict: dict) -> str:
    """The guard's judgement in a sentence, with the reference's band."""
    if verdict.get("status") == "unguarded":
        return f"not guarded: {verdict.get('why') or verdict.get('message', '')}"
    ref = verdict["reference"]
    band = ref.get("half_width", ref["high"] - ref["mean"])
    return (f"{verdict.get('metric', 'accuracy')} {units.metric(verdict['value'])} vs reference "
            f"{units.metric(ref['mean'])} (sd {ref['sd']:.3f} over {len(ref['values'])} seeds); accepted "
            f"{_band(ref)}, the band ± {band:.3f}")


def _band(ref: dict) -> str:
    """The accepted band as the metric can read: a share (every seed's value within 0-1,
    higher better: accuracy, AUC) is shown within 0-1, an error (lower better, none below 0)
    from 0; the band itself (mean ± its half-width) may reach past them."""
    low, high, values = ref["low"], ref["high"], ref.get("values") or []
    if values and ref.get("direction", "higher") == "higher" and all(0 <= v <= 1 for v in values):
        low, high = max(low, 0.0), min(high, 1.0)
    elif values and ref.get("direction") == "lower" and all(v >= 0 for v in values):
        low = max(low, 0.0)
    return f"{units.metric(low)}-{units.metric(high)}"


def power_lines(results: dict[str, CellResult]) -> list[str]:
    """Per reference: the smallest drop of its metric the guard flags, and whether that is useful."""
    lines = []
    for ref in guard.power(results):
        metric = results[ref.cell].guard_metric
        change, side = ("a drop", "below") if ref.direction == "higher" else ("a rise", "above")
        drop = f"flags {change} of {metric} beyond {ref.smallest_drop:.3f} {side} {units.metric(ref.mean)} " \
               f"({len(ref.values)} seeds of {ref.cell})"
        worth = f"{guard.POWER:g}" if ref.direction == "higher" else f"{guard.POWER:.0%} of it ({guard.POWER * ref.scale:.3f})"
        if len(ref.values) < 2:
            continue
        if ref.at_chance:
            lines.append(f"{ref.cell.split('-')[0]}: THE REFERENCE DID NOT LEARN: {metric} {units.metric(ref.mean)} "
                         f"over {len(ref.values)} seeds of {ref.cell}, within {guard.FLOOR:g} of chance "
                         f"({units.metric(ref.chance)}{_chance_source(metric)}); a cell that learns nothing reads as "
                         "well as it, so the guard judged none: check the labels against the features, or train "
                         "longer (--epochs, --profile full).")
        elif ref.powered:
            lines.append(f"{ref.cell.split('-')[0]}: {drop}.")
        else:
            lines.append(f"{ref.cell.split('-')[0]}: TOO LITTLE POWER at this profile: it {drop}, more than the "
                         f"{worth} worth catching; more seeds (--guard-seeds) or longer training "
                         "(--profile full, --epochs) narrow it.")
    return lines


def _chance_source(metric: str) -> str:
    return ", the test set's majority-class share" if metric.endswith("accuracy") else ""


def guard_lines(results: dict[str, CellResult]) -> list[str]:
    """One line per cell the accuracy guard flagged, with its numbers."""
    return [f"{cell}: {v['status'].upper()}, {guard_message(v)}" for cell, v in guard.flagged(results).items()]


def guard_outcome(results: dict[str, CellResult], interleaved: bool = False, guard_seeds: int | None = None) -> str:
    """What the guard found when it flagged nothing: how many cells it judged, or why it
    judged none (off, no reference, a time-to-target run, an interleaved run).
    ``guard_seeds``: the run's (None when it did not store them)."""
    judged = [r.guard for r in results.values() if r.guard and not r.spec.is_replicate]
    guarded = [g for g in judged if g["status"] != "unguarded"]
    if interleaved and not guarded:
        return ("The accuracy guard judged no cell: an interleaved run has no reference seeds; each cell's test "
                "metric is compared side B against side A instead (Interleaved A/B).")
    if guard_seeds is not None and guard_seeds < 2 and not guarded:
        return (f"The accuracy guard was off in this run (guard seeds {guard_seeds}; --guard-seeds or the matrix "
                "file's guard_seeds of 2 or more turns it on): it judged no cell.")
    if not guarded:
        whys = list(dict.fromkeys(g.get("why", "") for g in judged if g.get("why")))
        why = "; ".join(whys) if whys else "no cell of this run trains to a fixed length (time-to-target cells " \
                                           "stop at their target; matmul does not learn)"
        return f"The accuracy guard judged no cell: {why}."
    weak = sum(1 for g in guarded if g["status"] == "underpowered")
    chance = sum(1 for g in guarded if g["status"] == "chance")
    if chance == len(guarded):
        return (f"The accuracy guard judged no cell: its reference did not learn (its test metric within "
                f"{guard.FLOOR:g} of chance), so a cell that learns nothing would read as well as it.")
    return (f"No cell is outside its reference's band on its bad side ({len(guarded) - chance} judged"
            + (f", {weak} of them with too little power to flag a drop worth catching" if weak else "")
            + (f"; {chance} not, their reference at chance" if chance else "") + ").")


def guard_metrics(results: dict[str, CellResult]) -> str:
    """Each workload's guard metric in this run: ``reuters_cnn: accuracy, multibranch: auc``."""
    found = {r.spec.workload: r.guard_metric for r in results.values() if r.measured and r.guard_value is not None}
    return ", ".join(f"{w}: {m}" for w, m in found.items()) or "none"


def guard_rule() -> str:
    """How the guard accepts a cell, from its constants."""
    return (f"accepted within a {units.percent(guard.CONFIDENCE)} prediction interval for a new seed, "
            f"mean ± t(n - 1) x sd x sqrt(1 + 1/n), never narrower than ± {guard.FLOOR:g} (for an error such "
            f"as MAE, {guard.FLOOR:g} of the reference's mean)")
