"""Builders of stored runs with known samples, for storage, compare and CLI tests."""

from __future__ import annotations

import datetime as dt
import random

from distbench.core import stats
from distbench.storage.files import Storage, run_document

MACHINE = "x86_64-2cpu-nogpu-test00"
INFO = {
    "distbench": {
        "cpu_model": "Test CPU", "cpu_count": 2, "memory_bytes": 24 * 2**30, "gpu_count": 0, "gpus": [],
        "tpu": None, "tensorflow": "2.21.0", "keras": "3.15.1", "cuda_build": None, "cudnn_build": None,
        "python": "3.11.7",
    }
}


def samples(median_ms: float, n: int = 150, spread: float = 0.1, seed: int = 0) -> list[float]:
    """``n`` step times around ``median_ms`` with a multiplicative spread (seconds)."""
    rng = random.Random(seed)
    return [median_ms / 1e3 * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


def record(cell: str, step_samples: list[float], accuracy: float = 0.5, replicas: int = 1) -> dict:
    workload, strategy, loop = (cell.split("-") + [None])[:3]
    summary = stats.summarize(step_samples)
    return {
        "cell": cell, "status": "ok",
        "config": {"workload": workload, "strategy": strategy, "loop": loop},
        "strategy": {"replicas": replicas, "virtual_devices": strategy == "virtual", "notes": []},
        "steps": {"samples": step_samples, "steps_per_sample": 1},
        "step_time": summary.as_dict(),
        "examples_per_second": 32 / summary.median,
        "batch": {"global": 32, "per_replica": 32 // replicas, "replicas": replicas, "scaling": "strong"},
        "accuracy": {"train": accuracy, "test": {"examples": 100, "accuracy": accuracy}},
        "memory": {"peak_rss_bytes": 700 * 2**20, "device_peak_bytes": {}},
        "data": {"source": "synthetic"},
    }


def document(cells: dict[str, list[dict]], info: dict = INFO, commit: str = "abc12345",
             when: dt.datetime | None = None) -> dict:
    now = when or dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.timezone.utc)
    return run_document(cells, info, {"id": commit, "dirty": False}, now)


def save(root, cells: dict[str, list[dict]], machine: str = MACHINE, info: dict = INFO, commit: str = "abc12345",
         when: dt.datetime | None = None):
    return Storage(root).save(document(cells, info, commit, when), machine)
