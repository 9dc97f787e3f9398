"""Memory readings: the process's peak resident set and, on GPU, peak device memory."""

from __future__ import annotations

import resource
import sys

import psutil


def peak_rss_bytes() -> int:
    """The process's resident-set high-water mark since it started.

    psutil has no peak figure, so this reads getrusage's ru_maxrss (KiB on Linux, bytes
    on macOS). The kernel updates that mark lazily and counts pages a little differently
    from psutil, so the current RSS can read slightly higher: the peak is the larger.
    Each benchmark cell runs in a fresh process, so this is the cell's peak.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(int(peak if sys.platform == "darwin" else peak * 1024), rss_bytes())


def rss_bytes() -> int:
    """The current resident set (psutil)."""
    return int(psutil.Process().memory_info().rss)


def reset_device_peaks(devices: list[str]) -> None:
    """Starts a new peak measurement on each GPU or TPU in ``devices``."""
    import tensorflow as tf

    for name in _gpus(devices):
        tf.config.experimental.reset_memory_stats(name)


def device_peaks(devices: list[str]) -> dict[str, int]:
    """Peak bytes allocated on each GPU or TPU in ``devices`` since the last reset."""
    import tensorflow as tf

    return {name: int(tf.config.experimental.get_memory_info(name)["peak"]) for name in _gpus(devices)}


def _gpus(devices: list[str]) -> list[str]:
    """The accelerators among ``devices`` as ``get_memory_info`` names them (``GPU:1``,
    ``TPU:0``), from short (``/GPU:1``) or full (``/job:.../device:TPU:0``) names."""
    found = []
    for device in devices:
        name = device.rsplit("/", 1)[-1].split("device:")[-1].upper()
        if name.startswith(("GPU:", "TPU:")):
            found.append(name)
    return found
