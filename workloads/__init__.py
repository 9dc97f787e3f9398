"""Workloads: one module each, one registry. Nothing here knows a strategy."""

# Imported in the order `list` shows them; importing registers each workload.
from distbench.workloads import reuters_cnn, multibranch, matmul  # noqa: F401,I001
from distbench.workloads.registry import WORKLOADS

__all__ = ["WORKLOADS", "get"]


def get(name: str):
    """The workload registered as ``name``; unknown names raise a UserError."""
    return WORKLOADS.get(name)()
