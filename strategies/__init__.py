"""Strategy adapters: one small module each, one registry.

Nothing here knows a workload. Importing this package registers every adapter.
"""

# Imported in the order `list` shows them; importing registers each adapter.
from distbench.strategies import default, one_gpu, virtual, mirrored, tpu, multi_worker, parameter_server  # noqa: F401,I001
from distbench.strategies.base import Availability, StrategyAdapter
from distbench.strategies.registry import STRATEGIES

__all__ = ["STRATEGIES", "Availability", "StrategyAdapter", "for_spec", "get"]


def get(name: str, **options) -> StrategyAdapter:
    """Builds the adapter registered as ``name``; unknown names raise a UserError."""
    return STRATEGIES.get(name)(**options)


def for_spec(spec) -> StrategyAdapter:
    """The adapter a cell's spec (:class:`distbench.core.config.CellSpec`) asks for, with its options."""
    return get(spec.strategy, devices=spec.devices, workers=spec.workers, virtual_memory_mb=spec.virtual_memory_mb,
               cross_device_ops=spec.cross_device_ops, communication=spec.communication,
               connect_deadline_s=spec.connect_deadline_s, keras=spec.keras, ps=spec.ps)
