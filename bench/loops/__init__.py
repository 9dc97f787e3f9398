"""Training loops: fit, train_on_batch and custom, one module each, one registry."""

# Imported in the order `list` shows them; importing registers each loop.
from distbench.loops import fit, train_on_batch, custom  # noqa: F401,I001
from distbench.loops.base import LOOPS, LoopResult, TrainConfig, TrainContext, TrainingLoop, release_kept

__all__ = ["LOOPS", "LoopResult", "TrainConfig", "TrainContext", "TrainingLoop", "get", "release_kept"]


def get(name: str) -> TrainingLoop:
    """The loop registered as ``name``; unknown names raise a UserError."""
    return LOOPS.get(name)()
