"""Child side: the matmul scenario: the workload's product timed on the CPU and each compute device."""

from __future__ import annotations

from distbench.core import stats
from distbench.core.config import CellSpec
from distbench.strategies import hardware
from distbench.strategies.hardware import Hardware
from distbench.trackers import memory
from distbench.trackers.timing import time_repeats
from distbench.workloads.matmul import SUM_RTOL


def run(spec: CellSpec, workload, adapter, strategy, hw: Hardware, device_names: list[str]) -> dict:
    """Times the product on the CPU and on each of the adapter's compute devices; checks
    every sum against the exact reference of that device's own operands. A device that
    runs out of memory (the seed shape's product is 4 GB) is recorded as such; the other
    devices' figures stay."""
    targets = adapter.compute_devices(hw)
    shape = spec.matmul_shape
    timed = list(dict.fromkeys(["/CPU:0", *targets]))
    memory.reset_device_peaks(targets)
    per_device, failed = {}, {}
    for device in timed:
        try:
            per_device[device] = _time_product(spec, workload, device, shape)
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is expected; anything else is re-raised
            if type(exc).__name__ != "ResourceExhaustedError":
                raise
            failed[device] = f"ResourceExhaustedError: {str(exc).splitlines()[0][:200]}"
    if "/CPU:0" not in per_device:
        raise RuntimeError(f"matmul: the CPU could not run the {shape} product: {failed.get('/CPU:0')}")
    if targets and not any(d in per_device for d in targets):   # its figure would have been the CPU's
        raise RuntimeError(f"matmul: no compute device of this cell ({', '.join(targets)}) could run the {shape} "
                           f"product: {'; '.join(f'{d}: {why}' for d, why in failed.items())}")
    primary = next((d for d in targets if d in per_device), "/CPU:0")
    cpu_median = per_device["/CPU:0"]["summary"]["median"]
    mismatched = [d for d, r in per_device.items() if r["sum_rel_error"] > SUM_RTOL]
    if mismatched:
        raise RuntimeError(
            f"matmul sums disagree with the float64 reference beyond rtol {SUM_RTOL}: "
            + ", ".join(f"{d} rel. error {per_device[d]['sum_rel_error']:.2e}" for d in mismatched)
        )
    return {
        "matmul": {
            "shape": list(shape),
            "flops_per_byte": workload.intensity(shape),
            "sum_rtol": SUM_RTOL,
            "devices": per_device,
            "failed_devices": failed,
            "speedup_over_cpu": {d: cpu_median / r["summary"]["median"] for d, r in per_device.items()},
            "primary_device": primary,
        },
        "steps": {"samples": per_device[primary]["samples"], "steps_per_sample": 1},
        "step_time": per_device[primary]["summary"],
        "memory": {"peak_rss_bytes": memory.peak_rss_bytes(), "device_peak_bytes": memory.device_peaks(targets)},
    }


def _time_product(spec: CellSpec, workload, device: str, shape) -> dict:
    """One device's timing of the product, its sum against the exact reference of its own
    operands, and (on a GPU) whether TensorFloat-32 was on, with a strict float32 timing."""
    import tensorflow as tf

    a, b = workload.operands(device, shape, spec.seed)
    reference = workload.reference_sum(a, b)
    step = workload.step(device, a, b)
    value = step()  # warm-up: traces and places the function
    samples = time_repeats(step, spec.matmul_repeats)
    summary = stats.summarize(samples)
    found = {
        "samples": samples,
        "summary": summary.as_dict(),
        "gflops": workload.flops(shape) / summary.median / 1e9,
        "sum": value,
        "reference_sum": reference,
        "sum_rel_error": abs(value - reference) / abs(reference),
    }
    if "GPU" in device:
        # Ampere and newer multiply float32 in TensorFloat-32 by default: say so, and time
        # strict float32 too, so that "float32 GFLOP/s" means one thing.
        found["tensor_float_32"] = tf.config.experimental.is_tensor_float_32_execution_enabled()
        found["compute_capability"] = hardware.gpu_details(device).get("compute_capability")
        if found["tensor_float_32"]:
            tf.config.experimental.enable_tensor_float_32_execution(False)
            try:
                strict = workload.step(device, a, b)
                strict()
                found["gflops_strict_float32"] = workload.flops(shape) / stats.percentile(
                    time_repeats(strict, spec.matmul_repeats), 50) / 1e9
            finally:
                tf.config.experimental.enable_tensor_float_32_execution(True)
    del a, b
    return found
