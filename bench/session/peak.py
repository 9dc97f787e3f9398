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


def devices_used(record: dict) -> int | None:
    """How many of that device the cell computed on: its replicas on GPUs (one GPU each,
    unless carved from one GPU: ``virtual``), at most the GPUs a local cluster's workers
    were given; one CPU however many replicas share it. None for a cluster of other
    machines (SLURM, TF_CONFIG), whose peaks this run did not measure."""
    strategy = record.get("strategy") or {}
    if strategy.get("cluster") in ("slurm", "tf_config"):
        return None
    if device_of(record) != "/GPU:0" or strategy.get("virtual_devices") or record.get("matmul"):
        return 1
    replicas = int((record.get("batch") or {}).get("replicas") or strategy.get("replicas") or 1)
    given = {gpu for note in strategy.get("gpus_per_worker") or [] for gpu in str(note).split(",") if gpu}
    return min(replicas, len(given)) if given else replicas


def apply(cell_repeats: dict[str, list[dict]], peak: dict | None) -> None:
    """Writes the run's measured peak for each cell's device into its ok records
    (``compute.peak``, with ``devices``: how many of it the cell used, which its share of
    peak is over); a run without a peak record, or a cell of other machines, gets none."""
    peaks = (peak or {}).get("peaks") if (peak or {}).get("status") == "ok" else None
    if not peaks:
        return
    for repeats in cell_repeats.values():
        for record in repeats:
            device, count = device_of(record), devices_used(record)
            if record.get("status") == "ok" and device in peaks and count:
                record.setdefault("compute", {})["peak"] = {"device": device, **peaks[device], "devices": count}
