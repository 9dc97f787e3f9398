"""No distribution: TensorFlow's default strategy, one replica, default placement."""

from __future__ import annotations

from distbench.strategies.base import Availability, StrategyAdapter
from distbench.strategies.hardware import Hardware
from distbench.strategies.registry import STRATEGIES


@STRATEGIES.register
class DefaultAdapter(StrategyAdapter):
    name = "default"
    summary = "no distribution (tf.distribute default strategy), one replica"
    reads = ()

    def availability(self, hw: Hardware) -> Availability:
        return Availability.yes()

    def create(self, hw: Hardware):
        import tensorflow as tf

        return tf.distribute.get_strategy()

