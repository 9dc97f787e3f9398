"""The registry of workloads (filled by ``@WORKLOADS.register``)."""

from bench.registry import Registry

WORKLOADS = Registry("workload")
