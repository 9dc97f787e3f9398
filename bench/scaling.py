"""Scaling efficiency: how much of N replicas' worth of speed-up a strategy delivers.

    efficiency = throughput(N replicas) / (N x throughput(1 replica))

The one-replica reference is the ``default`` cell of the same workload, loop and
scaling kind. Strong scaling keeps the global batch fixed (each replica gets less);
weak scaling keeps the per-replica batch fixed (the global batch grows with N). Virtual
devices carved from one physical device, and local workers on one machine, share that
hardware: their figure is shown, marked, and is not real scaling. Pure: records in,
rows out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ScalingRow:
    workload: str
    loop: str
    strategy: str
    replicas: int
    kind: str                  # "strong" or "weak"
    throughput: float          # global examples/s with N replicas
    reference: float           # examples/s of the one-replica default cell
    efficiency: float
    shared_hardware: bool      # virtual devices or local workers: not real scaling

    def as_dict(self) -> dict:
        return asdict(self)


def _ok(records: list[dict]) -> list[dict]:
    # The accuracy guard's extra seeds of the default cell are not scaling figures.
    return [r for r in records if r.get("status") == "ok" and "examples_per_second" in r
            and r["config"].get("init_seed") is None]


def _key(record: dict) -> tuple:
    cfg = record["config"]
    return (cfg["workload"], cfg.get("loop") or "", cfg.get("scaling", "strong"), cfg.get("steps_per_execution", 1),
            bool(cfg.get("jit_compile")))


def efficiencies(records: list[dict]) -> list[ScalingRow]:
    """One row per multi-replica cell that has a one-replica default cell to compare with."""
    reference = {_key(r): r for r in _ok(records) if r["config"]["strategy"] == "default"}
    rows = []
    for r in _ok(records):
        replicas = r["strategy"]["replicas"]
        base = reference.get(_key(r))
        if replicas < 2 or base is None:
            continue
        workload, loop, kind = _key(r)[:3]
        thr_1 = base["examples_per_second"]
        rows.append(ScalingRow(
            workload, loop, r["config"]["strategy"], replicas, kind, r["examples_per_second"], thr_1,
            r["examples_per_second"] / (replicas * thr_1), _shared_hardware(r["strategy"]),
        ))
    return rows


def _shared_hardware(strategy: dict) -> bool:
    """Virtual devices, or workers that all run on this machine."""
    if strategy.get("virtual_devices") or strategy.get("shared_hardware"):
        return True
    # Records stored before ``shared_hardware`` existed name their workers in the notes.
    return strategy.get("strategy") == "multi_worker" and any("127.0.0.1" in n for n in strategy.get("notes", []))


HEADERS = ["workload", "loop", "strategy", "replicas", "kind", "examples/s", "1-replica examples/s",
           "efficiency", "hardware"]


def table_rows(rows: list[ScalingRow]) -> list[list]:
    return [
        [r.workload, r.loop, r.strategy, r.replicas,
         f"{r.kind} ({'global batch fixed' if r.kind == 'strong' else 'per-replica batch fixed'})",
         f"{r.throughput:.0f}", f"{r.reference:.0f}", f"{r.efficiency:.2f}",
         "SHARED (virtual devices or local workers): not real scaling" if r.shared_hardware else "separate devices"]
        for r in rows
    ]
