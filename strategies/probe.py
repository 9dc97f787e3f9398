"""Child side: one small computation on each device a cell will use, before it builds a model.

TensorFlow can list a GPU that it cannot compute on: a driver older than the CUDA the
wheel was built for, a compute capability the wheel has no kernels for ("no kernel image
is available"), cuDNN or cuBLAS missing from a hand-made install, a GPU in
exclusive-process mode that another process holds. XLA on a GPU also needs libdevice and
ptxas from the CUDA toolkit, which a pip install may lack (tensorflow/tensorflow#58681).
Each of these fails at the first operation that needs it, pages into a training step,
as a crash of the cell. The probe finds them first: on each device, a matrix product
(cuBLAS) and a 1-D convolution (cuDNN) whose values are known, placed on the device
itself (not where soft placement would move them), and, for an XLA cell, the same product
compiled with XLA. :func:`unusable` says which device failed and how; the cell is then
skipped with that reason, a skip and not a result.
"""

from __future__ import annotations

PRODUCT = 5.0        # [1, 2] . [1, 2]
CONVOLUTION = 3.0    # three ones convolved with a width-3 kernel of ones, valid padding


def unusable(devices: list[str], jit_compile: bool = False) -> str | None:
    """Why one of ``devices`` cannot run this cell's computations (None when all can).

    Runs in the worker after the device set-up and the strategy's creation (a
    MultiWorkerMirroredStrategy must configure collectives before any operation runs).
    TPU devices are left to the TPU's own connect and initialise step.
    """
    for device in devices:
        if "TPU" in device.upper():
            continue
        reason = _probe(device, jit_compile)
        if reason:
            return (f"{device} is listed by TensorFlow but cannot run the cell's operations: {reason}. "
                    "The cell is skipped; `distbench list` shows what TensorFlow lists")
    return None


def _probe(device: str, jit_compile: bool) -> str | None:
    """The first thing that fails on ``device``: an error, a wrong value, or an operation
    that ran somewhere else."""
    import tensorflow as tf

    checks = [("matrix product", _product, PRODUCT), ("1-D convolution", _convolution, CONVOLUTION)]
    if jit_compile:
        checks.append(("XLA-compiled matrix product (jit_compile)", _compiled_product, PRODUCT))
    for what, check, expected in checks:
        try:
            with tf.device(device):
                value, placed = check(tf)
        except Exception as exc:  # noqa: BLE001 - any failure of the device is the answer
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            return f"{what} failed: {type(exc).__name__}: {first}"
        if not _same_device(placed, device):
            return f"{what} asked for {device} ran on {placed or 'an unknown device'}"
        if value != expected:
            return f"{what} returned {value!r}, expected {expected!r}"
    return None


def _product(tf):
    x = tf.constant([[1.0, 2.0]])
    y = tf.linalg.matmul(x, x, transpose_b=True)
    return float(y.numpy()[0, 0]), y.device


def _convolution(tf):
    x = tf.ones((1, 3, 1))
    y = tf.nn.conv1d(x, tf.ones((3, 1, 1)), stride=1, padding="VALID")
    return float(y.numpy()[0, 0, 0]), y.device


def _compiled_product(tf):
    x = tf.constant([[1.0, 2.0]])
    y = tf.function(lambda a: tf.linalg.matmul(a, a, transpose_b=True), jit_compile=True)(x)
    return float(y.numpy()[0, 0]), y.device


def _same_device(placed: str, wanted: str) -> bool:
    """Whether the tensor's device (``/job:localhost/replica:0/task:0/device:GPU:0``) is
    ``wanted`` (``/GPU:0``): the same type and index."""
    import tensorflow as tf

    if not placed:
        return False
    a, b = tf.DeviceSpec.from_string(placed), tf.DeviceSpec.from_string(wanted)
    return (a.device_type or "").upper() == (b.device_type or "").upper() and (a.device_index or 0) == (b.device_index or 0)
