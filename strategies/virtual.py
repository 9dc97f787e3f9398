"""MirroredStrategy over N logical devices carved from one physical device.

GPU 0 is split when there is one, otherwise the CPU. The replicas share one device's
hardware, so their numbers show the distribution machinery, not real scaling; records
mark them ``virtual_devices: true``.
"""

from __future__ import annotations

from distbench.strategies.base import Availability, StrategyAdapter, cross_device_ops
from distbench.strategies.devices import DeviceSetup
from distbench.strategies.hardware import Hardware
from distbench.strategies.registry import STRATEGIES


@STRATEGIES.register
class VirtualAdapter(StrategyAdapter):
    name = "virtual"
    summary = "MirroredStrategy over N logical devices split from GPU 0 (or the CPU)"
    reads = ("devices", "virtual_memory_mb", "cross_device_ops")

    def _device_type(self, hw: Hardware) -> str:
        return "GPU" if hw.gpus else "CPU"

    def availability(self, hw: Hardware) -> Availability:
        return Availability.yes(
            f"{self.devices} logical {self._device_type(hw)} devices sharing one physical device"
        )

    def device_setup(self, hw: Hardware) -> DeviceSetup:
        kind = self._device_type(hw)
        return DeviceSetup(
            logical_type=kind,
            logical_count=self.devices,
            logical_memory_mb=self.virtual_memory_mb if kind == "GPU" else None,
            only_first_gpu=kind == "GPU",
        )

    def device_names(self, hw: Hardware) -> list[str]:
        kind = self._device_type(hw)
        return [f"/{kind}:{i}" for i in range(self.devices)]

    def create(self, hw: Hardware):
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(self.device_names(hw),
                                              cross_device_ops=cross_device_ops(self.cross_device_ops))

    def describe(self, strategy, hw: Hardware) -> dict:
        info = super().describe(strategy, hw)
        info["cross_device_ops"] = self.cross_device_ops
        info["virtual_devices"] = True
        if self._device_type(hw) == "GPU":
            info["logical_memory_mb"] = self.virtual_memory_mb
        info["notes"] = [
            f"{self.devices} virtual {self._device_type(hw)} devices share one physical "
            "device: not real scaling"
        ]
        return info
