"""MirroredStrategy over every physical GPU; one CPU replica when there is none."""

from __future__ import annotations

from distbench.strategies.base import Availability, StrategyAdapter, cross_device_ops
from distbench.strategies.devices import DeviceSetup
from distbench.strategies.hardware import Hardware
from distbench.strategies.registry import STRATEGIES

CPU_FALLBACK_NOTE = "no GPU found: MirroredStrategy runs one replica on the CPU"


@STRATEGIES.register
class MirroredAdapter(StrategyAdapter):
    name = "mirrored"
    summary = "MirroredStrategy over all physical GPUs (one CPU replica without GPUs)"
    reads = ("cross_device_ops",)

    def availability(self, hw: Hardware) -> Availability:
        return Availability.yes("" if hw.gpus else CPU_FALLBACK_NOTE + hw.gpu_hint)

    def device_setup(self, hw: Hardware) -> DeviceSetup:
        return DeviceSetup(memory_growth=bool(hw.gpus))

    def device_names(self, hw: Hardware) -> list[str]:
        return [f"/GPU:{i}" for i in range(len(hw.gpus))] or ["/CPU:0"]

    def create(self, hw: Hardware):
        import tensorflow as tf

        # Named explicitly: with no argument, TensorFlow would also pick up any logical
        # CPU devices a test session carved, which are not "physical GPUs".
        return tf.distribute.MirroredStrategy(self.device_names(hw),
                                              cross_device_ops=cross_device_ops(self.cross_device_ops))

    def compute_devices(self, hw: Hardware) -> list[str]:
        return [f"/GPU:{i}" for i in range(len(hw.gpus))]

    def describe(self, strategy, hw: Hardware) -> dict:
        info = super().describe(strategy, hw)
        info["cross_device_ops"] = self.cross_device_ops
        info["notes"] = [] if hw.gpus else [CPU_FALLBACK_NOTE + hw.gpu_hint]
        return info
