"""Parent side: the run's measured peaks written into each cell's records.

As the accuracy guard writes its verdicts, so that every reader of a stored run sees them.
The peaks are measured by the worker task ``peak`` (:mod:`distbench.scenarios.peak`).
"""

from __future__ import annotations


def device_of(record: dict) -> str:
    """The peak that applies to a cell: its GPU's when it trained on GPUs, else the CPU's."""
    names = (record.get("strategy") or {}).get("devices") or []
    if (record.get("matmul") or {}).get("primary_device"):
        names = [record["matmul"]["primary_device"]]
    return "/GPU:0" if any("GPU" in n for n in names) else "/CPU:0"


def apply(cell_repeats: dict[str, list[dict]], peak: dict | None) -> None:
    """Writes the run's measured peak for each cell's device into its ok records
    (``compute.peak``); a run without a peak record leaves them without one."""
    peaks = (peak or {}).get("peaks") if (peak or {}).get("status") == "ok" else None
    if not peaks:
        return
    for repeats in cell_repeats.values():
        for record in repeats:
            device = device_of(record)
            if record.get("status") == "ok" and device in peaks:
                record.setdefault("compute", {})["peak"] = {"device": device, **peaks[device]}
