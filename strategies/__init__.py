"""Strategy adapters: one small module each, one registry.

Nothing here knows a workload. Importing this package registers every adapter.
"""

# Imported in the order `list` shows them; importing registers each adapter.
from strategies import default, one_gpu, virtual, mirrored, tpu, multi_worker  # noqa: F401,I001
from strategies.base import Availability, StrategyAdapter
from strategies.registry import STRATEGIES

__all__ = ["STRATEGIES", "Availability", "StrategyAdapter", "get"]


def get(name: str, **options) -> StrategyAdapter:
    """Builds the adapter registered as ``name``; unknown names raise a UserError."""
    return STRATEGIES.get(name)(**options)
