"""CPU-vs-GPU matrix product: c = a @ b reduced to a scalar, as in the reference recipe (seed shape 10000x100 @ 100x100000).

The workload defines the computation and its exact reference; the harness times it.
Because sum(a @ b) = colsum(a) . rowsum(b), the reference is exact in float64 at the
cost of two reductions, so every device's float32 result can be checked against it.
"""

from __future__ import annotations

from typing import Callable, ClassVar

from distbench.workloads.registry import WORKLOADS

# float32 summation of up to 10^9 terms: relative error well under 1e-3 in practice.
SUM_RTOL = 1e-3
MAXVAL = 3.0          # operands ~ U(0, 3), as published


@WORKLOADS.register
class Matmul:
    name = "matmul"
    summary = "CPU vs GPU float32 matmul (uniform a@b reduced to a scalar): GFLOP/s, speed-up"
    kind: ClassVar[str] = "matmul"
    # The strategies that hand matmul devices to time (default: the CPU; one_gpu: GPU 0;
    # mirrored: every GPU); it runs no training loop.
    strategies: ClassVar[tuple[str, ...]] = ("default", "one_gpu", "mirrored")

    def cells(self, strategies: list[str], loops: list[str]) -> list[tuple[str, None]]:
        """(strategy, loop) pairs of a selection this workload runs: one per device strategy."""
        return [(s, None) for s in strategies if s in self.strategies]

    @staticmethod
    def unavailable(spec, adapter, hw) -> str | None:
        """Why ``spec`` cannot run on ``hw`` beyond the adapter's own reasons."""
        if not adapter.compute_devices(hw):
            return f"matmul-{spec.strategy}: no GPU to time (the CPU figure is matmul-default)" + hw.gpu_hint
        return None

    @staticmethod
    def resolve(spec):
        """``spec`` ready to run: matmul has no data to resolve."""
        return spec

    @staticmethod
    def flops(shape: tuple[int, int, int]) -> float:
        m, k, n = shape
        return 2.0 * m * k * n

    @staticmethod
    def intensity(shape: tuple[int, int, int]) -> float:
        """FLOPs per byte moved at least once (a, b read, c written; float32): where the
        shape sits on the roofline. The quick shape writes a 0.4 GB product for 2e10 FLOPs
        (49 FLOP/B); a 4096-square product does 683 FLOP/B."""
        m, k, n = shape
        return 2.0 * m * k * n / (4.0 * (m * k + k * n + m * n))

    @staticmethod
    def operands(device: str, shape: tuple[int, int, int], seed: int):
        """a ~ U(0, 3)^(MxK), b ~ U(0, 3)^(KxN), created on ``device``: drawn as published
        (``uniform(minval=0, maxval=3.0)``), so that the seed shape's sum is comparable with
        the published 2.2495e11 (its expectation: 1.5 x 1.5 x K x M x N = 2.25e11)."""
        import tensorflow as tf

        m, k, n = shape
        with tf.device(device):
            a = tf.random.stateless_uniform((m, k), seed=(seed, 0), minval=0.0, maxval=MAXVAL)
            b = tf.random.stateless_uniform((k, n), seed=(seed, 1), minval=0.0, maxval=MAXVAL)
        return a, b

    @staticmethod
    def step(device: str, a, b) -> Callable[[], float]:
        """One timed unit: the product reduced to a scalar, materialised on the host."""
        import tensorflow as tf

        @tf.function
        def product_sum(x, y):
            return tf.reduce_sum(tf.matmul(x, y))

        def run() -> float:
            with tf.device(device):
                return float(product_sum(a, b))

        return run

    @staticmethod
    def reference_sum(a, b) -> float:
        import numpy as np

        col = np.asarray(a, dtype=np.float64).sum(axis=0)
        row = np.asarray(b, dtype=np.float64).sum(axis=1)
        return float(col @ row)

