"""A SLURM job step as the cluster of multi_worker or parameter_server.

Inside a job step of two or more tasks (``srun``: ``SLURM_PROCID``, ``SLURM_STEP_NUM_TASKS``,
``SLURM_STEP_NODELIST``, ``SLURM_STEP_TASKS_PER_NODE``) and without ``TF_CONFIG``, each
task's distbench lays the step's tasks out as SLURM does by default (block: the node
list's first node's ranks first), with TensorFlow's parsers of the node list and task
counts, and sets ``TF_CONFIG`` from that before anything reads it: from then on the task
is one task of a real cluster, as under Kubernetes (rank 0 is the chief, which saves the
run). A task that ``SLURMD_NODENAME`` / ``SLURM_LOCALID`` place elsewhere (another
distribution) is refused. Ports start at ``DISTBENCH_SLURM_PORT_BASE`` (default 8888) on
each node. TensorFlow's own ``SlurmClusterResolver`` is not used: it sorts the node names
(``node10`` before ``node9``), so ranks were given other nodes' addresses, and a node's
GPU share of 0 (four tasks, each with ``--gpus-per-task=1``) ended in a traceback.
"""

from __future__ import annotations

import json
import os

from distbench.core.errors import UserError
from distbench.strategies import hardware
from distbench.strategies.base import Availability

STEP_VARS = ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_NODELIST", "SLURM_STEP_TASKS_PER_NODE")
ACROSS = ("multi_worker", "parameter_server")
# Where a cross-process cell's cluster came from, for its record: "slurm" (set here, in the
# job step's processes), "local" (set by the local launcher), else TF_CONFIG as given.
SOURCE_ENV = "DISTBENCH_CLUSTER_SOURCE"


def in_job_step(environ=os.environ) -> bool:
    """Inside a job step of more than one task (a one-task step, ``srun --pty bash``, is no cluster)."""
    return all(environ.get(v) for v in STEP_VARS) and environ["SLURM_STEP_NUM_TASKS"].strip() not in ("1", "0")


def step_availability(strategy: str, ps: int = 1, environ=os.environ) -> Availability | None:
    """Whether ``strategy`` runs on this job step without ``TF_CONFIG`` (``run`` sets it from
    the step, :func:`apply`), and what on or why not; None outside one. What ``run`` would
    refuse of the step's tasks, ranks and jobs is said here (``list`` had called a step of 2
    tasks available for parameter_server); its node list is read by ``run``, with TensorFlow."""
    if not in_job_step(environ):
        return None
    try:
        tasks, _ = _tasks_and_rank(environ)
        jobs(strategy, tasks, ps)
    except UserError as exc:
        return Availability.no(f"{strategy}: {str(exc).rstrip('.')}")
    return Availability.yes(f"this SLURM job step's {tasks} tasks (select one cross-process strategy per step)")


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


def tf_config(strategy: str, ps: int, environ=os.environ) -> dict:
    """This task's ``TF_CONFIG`` from the job step: its tasks in SLURM's block order (its
    default: ranks fill the node list's first node, then the next; TensorFlow's resolver
    sorted the names, so ``node[9-10]`` gave rank 0 on node9 node10's address), each job's
    tasks in turn (chief, ps, worker: rank 0 the chief), ports from the port base on each
    node. Its GPUs: see :func:`gpu_share`."""
    slots, rank = _slots(environ)
    tasks = len(slots)
    host, local, _ = slots[rank]
    here, local_id = environ.get("SLURMD_NODENAME"), environ.get("SLURM_LOCALID")
    if (here and here != host) or (local_id not in (None, "") and _integer(environ, "SLURM_LOCALID") != local):
        raise UserError(f"This task (rank {rank}) runs on {here} as local task {local_id}, but the step's block "
                        f"layout puts rank {rank} on {host} as local task {local}: run the step with "
                        "--distribution=block (SLURM's default), or set TF_CONFIG yourself.")
    base = _integer(environ, "DISTBENCH_SLURM_PORT_BASE", "8888")
    if not 1024 <= base <= 65536 - tasks:
        raise UserError(f"DISTBENCH_SLURM_PORT_BASE={base}: this step's {tasks} tasks take ports from it up; give a "
                        f"port from 1024 to {65536 - tasks}.")
    addresses = [f"{h}:{base + k}" for h, k, _ in slots]
    cluster, task, start = {}, None, 0
    for kind, n in sorted(jobs(strategy, tasks, ps).items()):
        cluster[kind] = addresses[start:start + n]
        if start <= rank < start + n:
            task = {"type": kind, "index": rank - start}
        start += n
    return {"cluster": cluster, "task": task}


def _slots(environ) -> tuple[list[tuple[str, int, int]], int]:
    """The step's tasks in SLURM's block order, each as (node, local task, tasks on that
    node), and this task's rank among them."""
    hosts, per_node = _layout(environ)
    slots = [(host, k, n) for host, n in zip(hosts, per_node) for k in range(n)]
    tasks, rank = _tasks_and_rank(environ)
    if len(slots) != tasks:
        raise UserError(f"This SLURM job step's layout ({environ['SLURM_STEP_NODELIST']}, tasks per node "
                        f"{environ['SLURM_STEP_TASKS_PER_NODE']}) holds {len(slots)} tasks, not its {tasks} "
                        "(SLURM_STEP_NUM_TASKS); set TF_CONFIG yourself.")
    return slots, rank


def _tasks_and_rank(environ) -> tuple[int, int]:
    """The step's task count and this task's rank among them (UserError when it is none)."""
    tasks, rank = _integer(environ, "SLURM_STEP_NUM_TASKS"), _integer(environ, "SLURM_PROCID")
    if not 0 <= rank < tasks:
        raise UserError(f"SLURM_PROCID={rank} is not a rank of this job step's {tasks} tasks (0 to {tasks - 1}); "
                        "set TF_CONFIG yourself.")
    return tasks, rank


def _integer(environ, name: str, default: str | None = None) -> int:
    """``environ[name]`` as an integer; UserError naming it otherwise (a traceback had)."""
    raw = environ.get(name, default)
    try:
        return int(str(raw).strip())
    except ValueError:
        raise UserError(f"{name}={raw!r} is no integer; SLURM sets it for each task of a job step (srun), "
                        "or set TF_CONFIG yourself.") from None


def _layout(environ) -> tuple[list[str], list[int]]:
    """The step's node names in SLURM's order, and each node's task count."""
    from tensorflow.python.distribute.cluster_resolver.slurm_cluster_resolver import (expand_hostlist,
                                                                                      expand_tasks_per_node)

    nodes, counts = environ["SLURM_STEP_NODELIST"], environ["SLURM_STEP_TASKS_PER_NODE"]
    try:
        hosts, per_node = expand_hostlist(nodes), expand_tasks_per_node(counts)
    except (ValueError, IndexError) as exc:
        raise UserError(f"Cannot read this SLURM job step's nodes (SLURM_STEP_NODELIST={nodes!r}, "
                        f"SLURM_STEP_TASKS_PER_NODE={counts!r}): {exc}; set TF_CONFIG yourself.") from None
    if len(hosts) != len(per_node):
        raise UserError(f"This SLURM job step names {len(hosts)} nodes ({nodes}) and task counts for "
                        f"{len(per_node)} ({counts}); set TF_CONFIG yourself.")
    return hosts, per_node


def gpu_share(gpus: int, environ=os.environ) -> str | None:
    """This task's ``CUDA_VISIBLE_DEVICES`` when the tasks of its node share its ``gpus``: an
    equal share by local task, taken from the devices this node's tasks see (a
    ``CUDA_VISIBLE_DEVICES=2,3`` of the job's stays within 2 and 3); None when there are no
    GPUs or SLURM gave each task its own (``--gpus-per-task``)."""
    if not gpus or environ.get("SLURM_GPUS_PER_TASK"):
        return None
    slots, rank = _slots(environ)
    _, local, here = slots[rank]
    visible = hardware.visible_gpu_ids(environ.get("CUDA_VISIBLE_DEVICES"), gpus)
    share = len(visible) // here
    if share < 1:
        raise UserError(f"{here} tasks of this SLURM job step share this node's {len(visible)} GPUs: give each task "
                        "its own (srun --gpus-per-task=1), or run fewer tasks per node.")
    return ",".join(visible[local * share:(local + 1) * share])


def apply(selected: list[str], ps: int, gpus: int | None = None, environ=os.environ,
          single: list[str] | None = None) -> dict | None:
    """In a job step without ``TF_CONFIG``, when the selection (``selected``: strategy
    names, empty for all) has a cross-process strategy: sets ``TF_CONFIG`` from the step
    and returns it; None otherwise. One cross-process strategy per job step, and no
    single-process one (``single``: those of the selection; by default, all but the
    built-in cross-process ones): a UserError. ``gpus``: the node's GPUs (default: listed
    here, only inside a job step)."""
    if environ.get("TF_CONFIG") or not in_job_step(environ):
        return None
    single = [s for s in selected or () if s not in ACROSS] if single is None else single
    if single:   # each task ran them, at once (tasks that share a node timed each other), and saved its own run
        raise UserError(f"A SLURM job step of {environ['SLURM_STEP_NUM_TASKS'].strip()} tasks runs distbench on every "
                        f"task, so each would measure {', '.join(single)} at once, one run per task: measure "
                        "single-process cells in a step of one task (srun -n 1), and select one cross-process "
                        "strategy for a step of several (--strategy multi_worker or --strategy parameter_server).")
    across = [s for s in (selected or ACROSS) if s in ACROSS]
    if not across:
        return None
    if len(across) > 1:
        raise UserError("A SLURM job step is the cluster of one strategy: select --strategy multi_worker or "
                        "--strategy parameter_server.")
    if gpus is None:
        gpus = len(hardware.detect().gpus)
    config = tf_config(across[0], ps, environ)
    share = gpu_share(gpus, environ)
    if share is not None:
        environ["CUDA_VISIBLE_DEVICES"] = share   # the workers start with it (the fork servers are keyed on it)
    environ["TF_CONFIG"] = json.dumps(config)
    environ[SOURCE_ENV] = "slurm"
    return config


def source(environ=os.environ) -> str:
    """Where a cross-process strategy's cluster came from: slurm, local or tf_config."""
    return environ.get(SOURCE_ENV) or "tf_config"
