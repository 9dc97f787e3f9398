"""OneDeviceStrategy on GPU 0, with memory growth set before TensorFlow initialises."""

from __future__ import annotations

from distbench.strategies.base import Availability, StrategyAdapter
from distbench.strategies.devices import DeviceSetup
from distbench.strategies.hardware import Hardware
from distbench.strategies.registry import STRATEGIES


@STRATEGIES.register
class OneGpuAdapter(StrategyAdapter):
    name = "one_gpu"
    summary = "OneDeviceStrategy on GPU 0 with memory growth"
    reads = ()

    def availability(self, hw: Hardware) -> Availability:
        if not hw.gpus:
            return Availability.no("one_gpu: no GPU found (TensorFlow lists no physical GPU)" + hw.gpu_hint)
        return Availability.yes()

    def device_setup(self, hw: Hardware) -> DeviceSetup:
        return DeviceSetup(memory_growth=True)

    def create(self, hw: Hardware):
        import tensorflow as tf

        return tf.distribute.OneDeviceStrategy("/GPU:0")

    def compute_devices(self, hw: Hardware) -> list[str]:
        return ["/GPU:0"]

    def device_names(self, hw: Hardware) -> list[str]:
        return ["/GPU:0"]
