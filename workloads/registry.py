"""The registry of workloads (filled by ``@WORKLOADS.register``; entry points in ``distbench.workloads``)."""

from distbench.core.registry import Registry

# The protocol of docs/own-model.md: Workload's members (TextWorkload and TextClassifier are Workloads).
WORKLOADS = Registry("workload", "distbench.workloads", needs=(
    "name", "kind", "build_model", "load", "loss", "metrics", "evaluate", "cells", "resolve"),
    how="subclass distbench.Workload (give it name, build_model and data) or distbench.TextClassifier")
