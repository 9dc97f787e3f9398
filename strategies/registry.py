"""The registry of strategy adapters (filled by ``@STRATEGIES.register``; entry points in ``distbench.strategies``)."""

from distbench.core.registry import Registry
from distbench.strategies.base import StrategyAdapter

STRATEGIES = Registry("strategy", "distbench.strategies", needs=("name", "availability", "create"),
                      base=StrategyAdapter)
