"""The on-disk cache of values that are slow to make and fixed by their inputs.

Synthetic data (:mod:`distbench.workloads.data`), FLOP counts (:mod:`distbench.trackers.flops`) and
py-cpuinfo's description of the CPU, per boot (:mod:`distbench.storage.machine`), live in
``~/.cache/distbench`` (or ``$DISTBENCH_CACHE``; ``off`` turns the cache off), each
file named by a hash of everything that determines its content, so that a changed
generator or model never reads an old file. A cache that cannot be written or read is
only skipped: the value is then made, as without it.
"""

from __future__ import annotations

import hashlib
import json
import os

from distbench.core.fileio import atomic_write_json


def folder() -> str | None:
    """The cache folder, or None when the cache is off (``DISTBENCH_CACHE=off``)."""
    found = os.environ.get("DISTBENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "distbench")
    return None if found == "off" else found


def path(kind: str, key: str, suffix: str) -> str | None:
    """The file for ``key`` (any text that determines the content), or None when off."""
    where = folder()
    if where is None:
        return None
    return os.path.join(where, f"{kind}-{hashlib.sha1(key.encode()).hexdigest()[:16]}{suffix}")


def read_json(file: str | None) -> dict | None:
    if file is None:
        return None
    try:
        with open(file) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_json(file: str | None, value: dict) -> None:
    if file is None:
        return
    try:
        os.makedirs(os.path.dirname(file), exist_ok=True)
        atomic_write_json(file, value)
    except OSError:
        pass
