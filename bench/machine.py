"""The machine fingerprint stored with every run: software, CPU, memory, accelerators."""

from __future__ import annotations

import json
import os
import platform

import psutil


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """TensorFlow/Keras/CUDA/cuDNN versions, CPU, memory and GPUs (no runtime start-up)."""
    import keras
    import tensorflow as tf

    from strategies import hardware

    build = tf.sysconfig.get_build_info()
    gpus = tf.config.list_physical_devices("GPU")
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "cuda_build": build.get("cuda_version"),
        "cudnn_build": build.get("cudnn_version"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "memory_bytes": psutil.virtual_memory().total,
        "gpu_count": len(gpus),
        "gpus": [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus],
        "tpu": hardware.detect().tpu_address,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# What identifies the hardware and software a number was measured on. The CPU's
# current clock, free memory and the like drift from run to run and are left out.
FINGERPRINT_KEYS = (
    "cpu_model", "cpu_count", "memory_bytes", "gpu_count", "gpus", "tpu",
    "tensorflow", "keras", "cuda_build", "cudnn_build", "python",
)


def fingerprint(info: dict) -> dict:
    """The stable part of :func:`machine_info` (memory rounded to GiB)."""
    fp = {k: info.get(k) for k in FINGERPRINT_KEYS}
    if fp["memory_bytes"]:
        fp["memory_bytes"] = round(fp["memory_bytes"] / 2**30)
    return fp


def machine_id(info: dict) -> str:
    """A readable, stable folder name for this hardware, e.g. ``x86_64-2cpu-nogpu-1a2b3c``.

    Built from the hardware only (not the software versions), so that a TensorFlow
    upgrade stays in the same history, where ``check`` can catch what it changed.
    """
    import hashlib

    hw = {k: info.get(k) for k in ("cpu_model", "cpu_count", "gpus", "tpu")}
    hw["memory_gib"] = round((info.get("memory_bytes") or 0) / 2**30)
    digest = hashlib.sha1(json.dumps(hw, sort_keys=True).encode()).hexdigest()[:6]
    gpus = f"{info.get('gpu_count')}gpu" if info.get("gpu_count") else "nogpu"
    return f"{platform.machine()}-{info.get('cpu_count')}cpu-{gpus}-{digest}"
