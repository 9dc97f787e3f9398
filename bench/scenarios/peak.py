"""What this machine's devices reach: compute peak and memory bandwidth, measured.

Child side (:func:`measure`, worker task ``peak``): one process per run times, on the CPU
and on the first GPU (if any), a square float32 matrix product at a size that reaches
the device's peak (4096 on a CPU: 230 GFLOP/s here, where the matmul workload's quick
shape reaches 150; 8192 on a GPU), and a reduction over a large array (bytes read per
second). A training cell's achieved FLOP/s is divided by its device's measured peak
(``share of measured peak``), and the matmul workload places its own shape on the
roofline (FLOPs per byte against peak and bandwidth).

The peak is measured once per run, in its own process (at 4096, timing it costs ~4 s, too
much for every cell of the main command). Between processes this machine drifts by
25-40% (the same 4096 product ran at 165 and at 230 GFLOP/s in two processes a minute
apart), so a share of peak is read within its run, not across runs.

The parent writes the run's peaks into each cell's records
(:func:`distbench.session.peak.apply`).

GPU datasheet peaks (float32, without tensor cores; TF32 is higher) are known for a few
models and shown beside the measured one where the device name matches.
"""

from __future__ import annotations

from distbench.strategies import hardware
from distbench.trackers import disturbance
from distbench.trackers.timing import time_repeats

PEAK_SIZE = {"CPU": 4096, "GPU": 8192}     # square matmul sizes that reach peak
BANDWIDTH_FLOATS = {"CPU": 64 * 2**20, "GPU": 512 * 2**20}   # 256 MiB, 2 GiB read per timing
WARMUP, REPEATS = 2, 3
METHOD = ("float32 square matmul at peak size (the fastest of 3 after 2 warm-up) and a reduction's bytes read per "
          "second (the fastest of 3), in one process per run")

# Float32 (non-tensor-core) datasheet peaks, GFLOP/s, by a substring of the device name.
DATASHEET_GFLOPS = {
    "H200": 66900, "H100 SXM": 66900, "H100 PCIe": 51200, "H100": 51200, "A100": 19500, "A10G": 31200,
    "A10": 31200, "L40S": 91600, "L4": 30300, "V100": 15700, "T4": 8100, "RTX 4090": 82600,
}


def datasheet_gflops(device_name: str) -> float | None:
    """The datasheet float32 peak of a GPU named ``device_name`` (None when not known)."""
    for key, value in DATASHEET_GFLOPS.items():
        if key in device_name:
            return float(value)
    return None


def measure(spec=None) -> dict:
    """The peak record of this process's devices: the CPU and the first GPU."""
    import tensorflow as tf

    devices = {"/CPU:0": "CPU"}
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        devices["/GPU:0"] = "GPU"
    meter = disturbance.Meter()   # a peak measured under load inflates every share of it
    peaks = {device: _device_peak(device, kind) for device, kind in devices.items()}
    return {"cell": "peak", "status": "ok", "method": METHOD, "peaks": peaks, "disturbance": meter.stop()}


def _device_peak(device: str, kind: str) -> dict:
    import tensorflow as tf

    n = PEAK_SIZE[kind]
    flops = 2.0 * n**3
    with tf.device(device):
        a = tf.random.stateless_uniform((n, n), seed=(0, 0))
        b = tf.random.stateless_uniform((n, n), seed=(0, 1))
        product = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
        samples = time_repeats(lambda: float(product(a, b)), WARMUP + REPEATS)[WARMUP:]
        del a, b
        big = tf.ones((BANDWIDTH_FLOATS[kind],), tf.float32)
        reduce = tf.function(tf.reduce_sum)
        reads = time_repeats(lambda: float(reduce(big)), WARMUP + REPEATS)[WARMUP:]
        del big
    name = hardware.gpu_details(device).get("device_name", "") if kind == "GPU" else ""
    return {
        "kind": kind, "shape": [n, n, n], "samples": samples,
        # The peak is the best the device did: the fastest repeat.
        "gflops": flops / min(samples) / 1e9,
        "bandwidth_gbs": 4.0 * BANDWIDTH_FLOATS[kind] / min(reads) / 1e9,
        "device_name": name, "datasheet_gflops": datasheet_gflops(name) if name else None,
    }
