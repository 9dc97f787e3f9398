"""TPUStrategy, on a local TPU VM or the TPU named by TPU_NAME.

Availability only looks at the environment and /dev; the connection itself happens in
:meth:`create`, which runs inside a worker process under the launcher's deadline, and
under its own, shorter one (``--connect-deadline``): a TPU that is busy, preempted or
unreachable makes the connect or the initialise wait without end, and the cell should say
so in minutes, not after the cell's 15.
"""

from __future__ import annotations

from distbench.strategies.base import Availability, StrategyAdapter
from distbench.strategies.connect import within
from distbench.strategies.hardware import Hardware
from distbench.strategies.registry import STRATEGIES


@STRATEGIES.register
class TpuAdapter(StrategyAdapter):
    name = "tpu"
    summary = "TPUStrategy (TPU_NAME or a local TPU VM)"
    reads = ("connect_deadline_s",)

    def availability(self, hw: Hardware) -> Availability:
        if hw.tpu_address or (hw.local_tpu_devices and hw.libtpu_installed):
            return Availability.yes()
        local = (
            f"local devices {', '.join(hw.local_tpu_devices)} but libtpu is not installed"
            if hw.local_tpu_devices
            else "no local TPU"
        )
        return Availability.no(f"tpu: no TPU found (TPU_NAME unset, {local})")

    def create(self, hw: Hardware):
        import tensorflow as tf

        where = hw.tpu_address or "local"

        def connect():
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=where)
            if hw.tpu_address:
                tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return resolver

        resolver = within(self.connect_deadline_s, connect, f"tpu: connecting to and initialising the TPU ({where})",
                          "the TPU may be busy with another job, preempted, or unreachable from here")
        return tf.distribute.TPUStrategy(resolver)

    def compute_devices(self, hw: Hardware) -> list[str]:
        return []

    def device_names(self, hw: Hardware) -> list[str]:
        return []  # known only once connected; describe() reads them from the strategy

    def describe(self, strategy, hw: Hardware) -> dict:
        info = super().describe(strategy, hw)
        info["devices"] = list(strategy.extended.worker_devices)
        return info
