"""``distbench list``: what is registered, what is available here (or why not), what is stored."""

from __future__ import annotations

from pathlib import Path


def listing_lines(devices: str, workloads: list[tuple[str, str]], strategies: list[tuple[str, object, str]],
                  loops: list[tuple[str, str]], results: str, runs: list[Path]) -> list[str]:
    """The lines of ``list``: ``workloads`` and ``loops`` as (name, summary); ``strategies``
    as (name, availability, summary); the stored ``runs`` under ``results``."""
    lines = [f"Devices (TensorFlow's physical devices; each cell probes its own before it runs): {devices}",
             "Workloads:"]
    lines += [f"  {name:14} {summary}" for name, summary in workloads]
    lines.append("Strategies:")
    for name, avail, summary in strategies:
        state = "available" if avail.ok else "unavailable"
        why = f" ({avail.reason})" if avail.reason else ""
        lines.append(f"  {name:14} {state}{why}: {summary}")
    lines.append("Loops:")
    lines += [f"  {name:14} {summary}" for name, summary in loops]
    lines.append(f"Stored runs in {results}/: {len(runs) or 'none'}")
    lines += [f"  {path.parent.name}/{path.name}" for path in runs]
    return lines
