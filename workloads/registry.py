"""The registry of workloads (filled by ``@WORKLOADS.register``; entry points in ``distbench.workloads``)."""

from distbench.core.registry import Registry

# The protocol of docs/own-model.md: TextWorkload's (or TextClassifier's) members.
WORKLOADS = Registry("workload", "distbench.workloads", needs=(
    "name", "kind", "build_model", "load_data", "loss", "metrics", "score", "cells", "resolve"))
