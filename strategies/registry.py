"""The registry of strategy adapters (filled by ``@STRATEGIES.register``)."""

from bench.registry import Registry

STRATEGIES = Registry("strategy")
