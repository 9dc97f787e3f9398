"""What accelerators this machine has, found without initialising TensorFlow's runtime.

Listing *physical* devices is allowed before memory growth or logical devices are set,
so the answers here are safe to ask for in any process, at any time, and are cached.
TPUs are never contacted here: a remote TPU address is only noted (connecting to one
in-process without a deadline was seen to hang for over 45 s); the worker process, which
runs under the launcher's deadline, does the connecting.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Hardware:
    """Physical devices and TPU hints of this machine."""

    cpus: int
    gpus: tuple[str, ...]           # TensorFlow names, e.g. "/physical_device:GPU:0"
    tpu_address: str | None         # TPU_NAME or COLAB_TPU_ADDR, when set
    local_tpu_devices: tuple[str, ...]
    libtpu_installed: bool


@functools.lru_cache(maxsize=1)
def detect() -> Hardware:
    """Lists physical devices (cached; never initialises the TensorFlow runtime)."""
    import tensorflow as tf

    return Hardware(
        cpus=len(tf.config.list_physical_devices("CPU")),
        gpus=tuple(d.name for d in tf.config.list_physical_devices("GPU")),
        tpu_address=os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR") or None,
        # TPU VMs expose their chips as /dev/accel* (v2-v4) or /dev/vfio/* (v5+).
        local_tpu_devices=tuple(sorted(glob.glob("/dev/accel*"))),
        libtpu_installed=importlib.util.find_spec("libtpu") is not None,
    )
