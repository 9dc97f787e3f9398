"""TPUStrategy, on a local TPU VM or the TPU named by TPU_NAME.

Availability only looks at the environment and /dev; the connection itself happens in
:meth:`create`, which runs inside a worker process under the launcher's deadline.
"""

from __future__ import annotations

from strategies.base import Availability, StrategyAdapter
from strategies.hardware import Hardware
from strategies.registry import STRATEGIES


@STRATEGIES.register
class TpuAdapter(StrategyAdapter):
    name = "tpu"
    summary = "TPUStrategy (TPU_NAME or a local TPU VM)"

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

        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=hw.tpu_address or "local")
        if hw.tpu_address:
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)

    def compute_devices(self, hw: Hardware) -> list[str]:
        return []

    def device_names(self, hw: Hardware) -> list[str]:
        return []  # known only once connected; describe() reads them from the strategy

    def describe(self, strategy, hw: Hardware) -> dict:
        info = super().describe(strategy, hw)
        info["devices"] = list(strategy.extended.worker_devices)
        return info
