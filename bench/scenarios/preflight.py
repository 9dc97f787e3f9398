"""Child side: the check a run makes of each of a user's workloads before any timing.

Loads the workload's data for the run's source and seed, builds its model (no strategy),
refuses a dataset of unknown length when no ``--steps-per-epoch`` says what an epoch is,
and lets the workload refuse what does not fit (:meth:`distbench.workloads.protocol.Workload.check`):
data whose shapes do not fit the model, a dataset already batched, a guard metric the
model does not compute. Its record says which metrics the model computes and which way
is better for each, so that the parent can check the run's targets. One worker per
workload and data, once per run (:meth:`distbench.session.suite.Suite.preflight`).

Before it, :func:`data_source` says which data ``auto`` means here, for a parent that keeps
TensorFlow out of its own process (trying a Keras loader imports Keras).
"""

from __future__ import annotations

from distbench import plugins, workloads
from distbench.core import keras_flavour
from distbench.core.config import CellSpec
from distbench.scenarios.cell import check_keras
from distbench.scenarios.training import steps_per_epoch_of


def check(spec: CellSpec) -> dict:
    plugins.ensure(spec)
    workload = workloads.get(spec.workload)
    check_keras(spec)
    data = workload.load(spec.data, spec.seed)
    keras_flavour.api().utils.set_random_seed(spec.training_seed)
    found = workload.check(workload.new_model(data), data)
    steps_per_epoch_of(spec, data, spec.global_batch)   # an epoch must be defined, of whole batches
    return {"cell": f"{spec.workload}-preflight", "status": "ok", "config": spec.to_dict(), "preflight": found}


def data_source(spec: CellSpec) -> dict:
    """``auto``'s data for ``spec``'s workload here: its Keras dataset, or synthetic and why.
    The Keras loader's own lines (``Downloading data from ...``) stay in this worker's log."""
    plugins.ensure(spec)
    source, why = workloads.get(spec.workload).auto_source()
    return {"cell": f"{spec.workload}-data", "status": "ok", "data": source, "why": why}
