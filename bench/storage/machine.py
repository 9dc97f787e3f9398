"""The machine fingerprint stored with every run: software, CPU, memory, accelerators."""

from __future__ import annotations

import functools
import glob
import json
import os
import platform
import sys

import psutil
from distbench.core import cache
from distbench.core.cpus import usable_cpus
from distbench.strategies import hardware


def cpu_info() -> dict:
    """py-cpuinfo's description of the CPU (pytest-benchmark's ``cpu``), asked once per boot
    and kept in distbench's cache (:mod:`distbench.core.cache`): py-cpuinfo takes about 1 s,
    in a process of its own, and every saved run asked it. What can change while the
    machine runs is not kept: the current clock (``hz_actual``, read at the save, not while
    anything was measured), the "advertised" clock where the brand string names none (then
    py-cpuinfo's is the current one too), and the count of online CPUs (read afresh). An
    answer without a brand string (py-cpuinfo's process failed) is not kept."""
    return {**_kept_cpu_info(), "count": os.cpu_count()}


@functools.lru_cache(maxsize=1)
def _kept_cpu_info() -> dict:
    try:
        import cpuinfo
    except ImportError:
        return {}
    boot = _boot_id()
    key = f"{boot}/{sys.version}/{sys.executable}/{cpuinfo.CPUINFO_VERSION_STRING}/1"
    file = cache.path("cpu", key, ".json") if boot else None
    found = cache.read_json(file)
    if found and found.get("key") == key:
        return found["cpu"]
    try:
        info = cpuinfo.get_cpu_info() or {}
    except Exception:  # noqa: BLE001 - py-cpuinfo probes the CPU and can fail on odd hosts
        return {}
    clock_named = "Hz" in str(info.get("brand_raw", ""))
    info = {k: v for k, v in info.items()
            if not k.startswith("hz_actual") and (clock_named or not k.startswith("hz_advertised"))}
    if info.get("brand_raw"):
        cache.write_json(file, {"key": key, "cpu": info})
    return info


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None


def benchmark_machine_info() -> dict:
    """pytest-benchmark's machine info as its ``pytest_benchmark_generate_machine_info``
    builds it, with the CPU from :func:`cpu_info` (kept, not asked again)."""
    from unittest import mock

    from pytest_benchmark import plugin

    with mock.patch.object(plugin, "get_cpu_info", cpu_info):
        return plugin.pytest_benchmark_generate_machine_info()


def cpu_model() -> str:
    """The CPU's brand string from py-cpuinfo (what pytest-benchmark stores too), else /proc."""
    brand = cpu_info().get("brand_raw")
    if brand:
        return brand
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Environment variables that change how fast TensorFlow runs (recorded, and compared).
SPEED_ENV = ("TF_ENABLE_ONEDNN_OPTS", "TF_XLA_FLAGS", "XLA_FLAGS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "TF_GPU_ALLOCATOR", "TF_GPU_THREAD_MODE",
             "CUDA_VISIBLE_DEVICES", "TF_FORCE_GPU_ALLOW_GROWTH", "TF_DETERMINISTIC_OPS")


def speed_env(environ=None) -> dict:
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in SPEED_ENV if k in environ}


def gpu_driver() -> str | None:
    """The NVIDIA driver's version (``nvidia-smi``), None without one."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[0] if out else None


def machine_info(cpu: dict | None = None) -> dict:
    """TensorFlow/Keras/CUDA/cuDNN versions, CPU, memory, GPUs and the environment
    variables that change speed (no runtime start-up). ``cpu``: py-cpuinfo's answer when
    the caller has it (pytest-benchmark's machine info), not asked for twice."""
    found = hardware.tensorflow_facts()   # from a worker, in the parent of a run (or imported here)
    return {
        **{k: found[k] for k in ("tensorflow", "keras", "cuda_build", "cudnn_build")},
        **_hardware(found["gpus"], cpu),
        "cpu_count_host": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "gpu_driver": gpu_driver() if found["gpus"] else None,
        "env": speed_env(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _hardware(gpus, cpu: dict | None = None) -> dict:
    """What :func:`machine_id` reads, as :func:`machine_info` stores it: one place for both
    (:func:`this_machine_id` builds it without TensorFlow where no GPU can be listed)."""
    return {"cpu_model": (cpu or {}).get("brand_raw") or cpu_model(), "cpu_count": usable_cpus(),
            "memory_bytes": psutil.virtual_memory().total, "gpu_count": len(gpus), "gpus": list(gpus),
            "tpu": hardware.tpu_address()}


# What identifies the hardware and software a number was measured on. The CPU's
# current clock, free memory and the like drift from run to run and are left out.
FINGERPRINT_KEYS = (
    "cpu_model", "cpu_count", "memory_bytes", "gpu_count", "gpus", "gpu_driver", "tpu",
    "tensorflow", "keras", "cuda_build", "cudnn_build", "python", "env",
)


def fingerprint(info: dict) -> dict:
    """The stable part of :func:`machine_info` (memory rounded to GiB)."""
    fp = {k: info.get(k) for k in FINGERPRINT_KEYS}
    fp["env"] = fp["env"] or {}   # runs stored before it was recorded had none set, as far as is known
    if fp["memory_bytes"]:
        fp["memory_bytes"] = round(fp["memory_bytes"] / 2**30)
    return fp


def machine_diff(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """The fingerprint fields that differ between two machine_info dicts."""
    fa, fb = fingerprint(a.get("distbench", a)), fingerprint(b.get("distbench", b))
    return [(k, fa[k], fb[k]) for k in fa if fa[k] != fb[k]]


def machine_id(info: dict, arch: str | None = None) -> str:
    """A readable, stable folder name for this hardware, e.g. ``x86_64-2cpu-nogpu-1a2b3c``.

    Built from the hardware only (not the software versions), so that a TensorFlow
    upgrade stays in the same history, where ``check`` can catch what it changed.
    ``arch``: a stored run's (pytest-benchmark's ``machine``); this machine's by default.
    """
    import hashlib

    hw = {k: info.get(k) for k in ("cpu_model", "cpu_count", "gpus", "tpu")}
    hw["memory_gib"] = round((info.get("memory_bytes") or 0) / 2**30)
    digest = hashlib.sha1(json.dumps(hw, sort_keys=True).encode()).hexdigest()[:6]
    gpus = f"{info.get('gpu_count')}gpu" if info.get("gpu_count") else "nogpu"
    return f"{arch or platform.machine()}-{info.get('cpu_count')}cpu-{gpus}-{digest}"


# Device nodes through which TensorFlow could list a GPU on Linux: NVIDIA's (CUDA), AMD's
# (ROCm), WSL's (DirectX); and the NVIDIA driver's own entries, there before its nodes are
# (CUDA makes those on first use, through nvidia-modprobe).
GPU_NODES = ("/dev/nvidia[0-9]*", "/dev/kfd", "/dev/dxg", "/proc/driver/nvidia/gpus/*")


def no_gpu_possible() -> bool:
    """Linux without any GPU device node, NVIDIA driver entry or CUDA driver library:
    TensorFlow can list no GPU here."""
    import ctypes.util

    return (sys.platform.startswith("linux") and not any(glob.glob(pattern) for pattern in GPU_NODES)
            and ctypes.util.find_library("cuda") is None)


def this_machine_id() -> str:
    """This machine's :func:`machine_id`. Where TensorFlow can list no GPU it is found
    without importing TensorFlow (5-9 s here), from what ``machine_id`` reads: a stored-run
    command (``compare latest~1 latest`` with several machines' folders) then takes about a
    second. Elsewhere, and once a worker has answered, from :func:`machine_info`."""
    return quick_machine_id() or machine_id(machine_info())


def quick_machine_id() -> str | None:
    """:func:`this_machine_id` where it needs no TensorFlow import; else None."""
    if hardware.known():
        return machine_id(machine_info())
    return machine_id(_hardware([])) if no_gpu_possible() else None
