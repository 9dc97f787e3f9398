"""The machine fingerprint stored with every run: software, CPU, memory, accelerators."""

from __future__ import annotations

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
