"""TensorFlow's device set-up, which a process may make exactly once.

Memory growth and logical devices must be set before the runtime initialises; after
that TensorFlow raises ``RuntimeError: ... cannot be modified after being initialized``.
:func:`apply` makes the set-up idempotent, accepts a request that matches what the
process already has, and otherwise raises :class:`DeviceSetupError`, which says to use a
fresh process (the launcher gives every benchmark cell its own).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from distbench.core.errors import UserError


class DeviceSetupError(UserError):
    """A device set-up that this process can no longer make."""


@dataclass(frozen=True)
class DeviceSetup:
    """What a strategy needs configured before TensorFlow's runtime starts.

    Attributes:
        memory_growth: allocate GPU memory as needed instead of all at once.
        logical_type: "CPU" or "GPU" when one physical device is split, else None.
        logical_count: how many logical devices to carve from it.
        logical_memory_mb: memory limit of each logical GPU (ignored for CPU).
        only_first_gpu: hide GPUs 1..N (a GPU split uses GPU 0 only; the others would
            otherwise reserve all their memory for nothing).
    """

    memory_growth: bool = False
    logical_type: str | None = None
    logical_count: int = 0
    logical_memory_mb: int | None = None
    only_first_gpu: bool = False

    @property
    def empty(self) -> bool:
        return not self.memory_growth and self.logical_type is None and not self.only_first_gpu

    def describe(self) -> dict:
        return {
            "memory_growth": self.memory_growth,
            "logical_type": self.logical_type,
            "logical_count": self.logical_count,
            "logical_memory_mb": self.logical_memory_mb,
            "only_first_gpu": self.only_first_gpu,
        }


_applied: DeviceSetup | None = None


def applied() -> DeviceSetup | None:
    """The set-up this process made through :func:`apply`, if any."""
    return _applied


def apply(setup: DeviceSetup) -> None:
    """Configures devices for ``setup`` once; a matching repeat is a no-op.

    Raises:
        DeviceSetupError: this process already has a different set-up, or TensorFlow's
            runtime started before the set-up could be made.
    """
    global _applied
    if setup.empty or setup == _applied:
        return
    if _applied is not None and not _compatible(_applied, setup):
        raise DeviceSetupError(
            f"This process already set up its devices as {_applied}; {setup} needs a "
            "fresh process, because TensorFlow allows device set-up once per process. "
            "Run cells through `distbench run` or `pytest --benchmark-only`, which "
            "start one process per cell."
        )
    try:
        _configure(setup)
    except RuntimeError as exc:
        raise DeviceSetupError(f"Cannot apply {setup}: {started(exc)}") from None
    _applied = setup


def started(exc: Exception) -> str:
    """Why a set-up came too late, and what to do: in distbench's workers (a fresh process
    per cell) it is code that ran a TensorFlow operation before the set-up."""
    return (f"TensorFlow's runtime had already started in this process ({exc}). In a distbench worker, a fresh "
            "process per cell, that is code that ran a TensorFlow operation before the set-up: most likely a "
            "module of your own strategy or plugin, run when imported (a module-level tf.constant or tf.data "
            "pipeline); build tensors in build_model, data or build instead. In your own process, make the "
            "set-up before any TensorFlow operation runs.")


def set_threads(intra_op: int | None, inter_op: int | None) -> None:
    """Thread-pool sizes, which (like devices) must be set before the runtime starts; a
    repeat of the same sizes is a no-op."""
    if not (intra_op or inter_op):
        return
    import tensorflow as tf

    try:
        if intra_op:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        if inter_op:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError as exc:
        raise DeviceSetupError(f"Cannot set thread counts: {started(exc)}") from None


# TensorFlow reads these when its runtime starts, for a pool that tf.config left at 0.
THREAD_ENV = {"intra_op": "TF_NUM_INTRAOP_THREADS", "inter_op": "TF_NUM_INTEROP_THREADS"}


def threads(environ=None) -> dict:
    """This process's thread-pool sizes: as set through tf.config, else as TensorFlow took
    them from ``TF_NUM_INTRAOP_THREADS``/``TF_NUM_INTEROP_THREADS`` (those pools named under
    ``from_env``), else 0, TensorFlow's default (one per core)."""
    import tensorflow as tf

    environ = os.environ if environ is None else environ
    sizes = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
             "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    from_env = {pool: THREAD_ENV[pool] for pool, size in sizes.items()
                if not size and _positive(environ.get(THREAD_ENV[pool], ""))}
    sizes.update({pool: int(environ[name]) for pool, name in from_env.items()})
    return {**sizes, "from_env": from_env} if from_env else sizes


def _positive(text: str) -> bool:
    """True for what TensorFlow's ``safe_strto32`` reads as a pool size above 0."""
    try:
        return int(text.strip()) > 0
    except ValueError:
        return False


def _compatible(have: DeviceSetup, want: DeviceSetup) -> bool:
    """True when ``have`` already provides everything ``want`` asks for."""
    if want.logical_type is not None and (
        want.logical_type, want.logical_count, want.logical_memory_mb
    ) != (have.logical_type, have.logical_count, have.logical_memory_mb):
        return False
    return not want.memory_growth or have.memory_growth


def _configure(setup: DeviceSetup) -> None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if setup.only_first_gpu and len(gpus) > 1:
        tf.config.set_visible_devices(gpus[:1], "GPU")
        gpus = gpus[:1]
    if setup.memory_growth:
        # Memory growth must be the same on every GPU, or TensorFlow refuses to start.
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
    if setup.logical_type is None:
        return
    physical = tf.config.list_physical_devices(setup.logical_type)[0]
    limit = setup.logical_memory_mb if setup.logical_type == "GPU" else None
    configs = [tf.config.LogicalDeviceConfiguration(memory_limit=limit)] * setup.logical_count
    existing = tf.config.get_logical_device_configuration(physical)
    if existing is not None and len(existing) == setup.logical_count:
        return  # Someone (e.g. a test session) already carved exactly these devices.
    tf.config.set_logical_device_configuration(physical, configs)


def cpu_only_process() -> int:
    """Hides this process's GPUs from TensorFlow (before its runtime starts), so that it
    neither places work on them nor reserves their memory; returns how many were hidden.

    For a process that runs cells in-process on the CPU (the test session): its logical
    CPU devices stand in for GPUs, its results stay deterministic, and worker processes,
    which it starts with the GPUs visible, find the GPUs' memory free.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError as exc:
            raise DeviceSetupError(f"Cannot hide this process's GPUs: the runtime already started ({exc}).") from None
    return len(gpus)
