"""Does anything run ahead of the step under ``--prefetch off``? A probe of tf.data itself.

    python tools/prefetch_probe.py

A pipeline of a slow map then ``batch(8)``, wrapped by distbench's own
``prefetched(ds, "off")``, is read twice: batch after batch, and with the reader away
200 ms before each batch. Were anything filling batches in the background (an injected
prefetch, a map-and-batch, a parallel map, tf.data's ``parallel_batch`` rewrite), a batch
asked for after 200 ms away would be ready at once; if nothing runs ahead it takes as
long as when read back to back. Both a stateful map (a Python sleep) and a stateless one
(matmuls) are probed, with ``parallel_batch`` as TensorFlow leaves it (on by default) and
forced off. Prints one line per probe; exits 1 if a batch was ready in under half the
back-to-back time.
"""

from __future__ import annotations

import sys
import time


def main() -> int:
    import tensorflow as tf

    from distbench.loops.base import prefetched

    def sleeping(x):
        return tf.py_function(lambda v: (time.sleep(0.005), v)[1], [x], tf.int64)

    def matmuls(x):
        m = tf.random.stateless_uniform((200, 200), seed=tf.stack([x, x]))
        for _ in range(6):
            m = tf.linalg.matmul(m, m) / 200.0
        return tf.reduce_sum(m)

    ahead = False
    for name, fn in (("stateful sleep", sleeping), ("stateless matmuls", matmuls)):
        for parallel_batch in (None, False):
            ds = prefetched(tf.data.Dataset.range(100_000).map(fn).batch(8), "off")
            if parallel_batch is not None:
                options = tf.data.Options()
                options.experimental_optimization.parallel_batch = parallel_batch
                ds = ds.with_options(options)
            it = iter(ds)
            next(it)
            busy, away = _median(it, 0.0), _median(it, 0.2)
            ahead |= away < busy / 2
            print(f"{name}, parallel_batch {'default' if parallel_batch is None else 'off'}: a batch takes "
                  f"{busy * 1e3:.1f} ms back to back, {away * 1e3:.1f} ms after 200 ms away", flush=True)
    return 1 if ahead else 0


def _median(it, pause: float, n: int = 9) -> float:
    took = []
    for _ in range(n):
        time.sleep(pause)
        start = time.perf_counter()
        next(it)
        took.append(time.perf_counter() - start)
    return sorted(took)[n // 2]


if __name__ == "__main__":
    sys.exit(main())
