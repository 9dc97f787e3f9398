"""A SLURM job step as the cluster of multi_worker or parameter_server.

Inside a job step (``srun``: ``SLURM_PROCID``, ``SLURM_STEP_NUM_TASKS``,
``SLURM_STEP_NODELIST``, ``SLURM_STEP_TASKS_PER_NODE``) and without ``TF_CONFIG``, each
task's distbench asks TensorFlow's ``SlurmClusterResolver`` for the cluster and its own
task, and sets ``TF_CONFIG`` from them before anything reads it: from then on the task is
one task of a real cluster, as under Kubernetes (rank 0 is the chief, which saves the run).
Ports start at ``DISTBENCH_SLURM_PORT_BASE`` (default 8888) on each node.

The resolver hands out GPUs as it packs tasks onto a node, and packs none on a node
without GPUs (``range(0, 0, ...)``), and it asks ``nvidia-smi`` when no GPU count is
given; on CPU nodes distbench tells it one GPU per task and not to set
``CUDA_VISIBLE_DEVICES``. TensorFlow 2.21's resolver expands the node list itself.
"""

from __future__ import annotations

import json
import os

from distbench.core.errors import UserError
from distbench.strategies import hardware

STEP_VARS = ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_NODELIST", "SLURM_STEP_TASKS_PER_NODE")
ACROSS = ("multi_worker", "parameter_server")
# Where a cross-process cell's cluster came from, for its record: "slurm" (set here, in the
# job step's processes), "local" (set by the local launcher), else TF_CONFIG as given.
SOURCE_ENV = "DISTBENCH_CLUSTER_SOURCE"


def in_job_step(environ=os.environ) -> bool:
    return all(environ.get(v) for v in STEP_VARS)


def step_availability(environ=os.environ) -> str | None:
    """What a cross-process strategy runs on in a job step without ``TF_CONFIG`` (``run``
    sets it from the step, :func:`apply`); None outside one."""
    if not in_job_step(environ):
        return None
    return (f"this SLURM job step's {environ['SLURM_STEP_NUM_TASKS']} tasks (select one cross-process strategy "
            "per step)")


def jobs(strategy: str, tasks: int, ps: int) -> dict[str, int]:
    """The resolver's jobs: every task a worker (multi_worker), or rank 0 the chief, then
    ``ps`` parameter servers, then workers (parameter_server; the resolver packs job names
    in sorted order)."""
    if strategy == "multi_worker":
        return {"worker": tasks}
    workers = tasks - 1 - ps
    if workers < 1:
        raise UserError(f"A SLURM job step of {tasks} tasks has no worker left for parameter_server after the "
                        f"chief and {ps} parameter servers; give it at least {ps + 2} tasks (or fewer --ps).")
    return {"chief": 1, "ps": ps, "worker": workers}


def tf_config(strategy: str, ps: int, gpus: int, environ=os.environ) -> dict:
    """This task's ``TF_CONFIG`` from the job step, through ``SlurmClusterResolver``."""
    import tensorflow as tf
    from tensorflow.python.distribute.cluster_resolver.slurm_cluster_resolver import expand_tasks_per_node

    per_node = max(expand_tasks_per_node(environ["SLURM_STEP_TASKS_PER_NODE"]))
    resolver = tf.distribute.cluster_resolver.SlurmClusterResolver(
        jobs=jobs(strategy, int(environ["SLURM_STEP_NUM_TASKS"]), ps),
        port_base=int(environ.get("DISTBENCH_SLURM_PORT_BASE", "8888")),
        gpus_per_node=gpus or per_node, gpus_per_task=None if gpus else 1, auto_set_gpu=bool(gpus),
    )
    cluster = resolver.cluster_spec().as_dict()
    kind, index = resolver.get_task_info()
    return {"cluster": cluster, "task": {"type": kind, "index": index}}


def apply(selected: list[str], ps: int, gpus: int | None = None, environ=os.environ) -> dict | None:
    """In a job step without ``TF_CONFIG``, when the selection (``selected``: strategy
    names, empty for all) has a cross-process strategy: sets ``TF_CONFIG`` from the step
    and returns it; None otherwise. One cross-process strategy per job step. ``gpus``: the
    node's GPUs (default: listed here, only inside a job step)."""
    if environ.get("TF_CONFIG") or not in_job_step(environ):
        return None
    across = [s for s in (selected or ACROSS) if s in ACROSS]
    if not across:
        return None
    if len(across) > 1:
        raise UserError("A SLURM job step is the cluster of one strategy: select --strategy multi_worker or "
                        "--strategy parameter_server.")
    if gpus is None:
        gpus = len(hardware.detect().gpus)
    config = tf_config(across[0], ps, gpus, environ)
    environ["TF_CONFIG"] = json.dumps(config)
    environ[SOURCE_ENV] = "slurm"
    return config


def source(environ=os.environ) -> str:
    """Where a cross-process strategy's cluster came from: slurm, local or tf_config."""
    return environ.get(SOURCE_ENV) or "tf_config"
