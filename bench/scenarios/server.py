"""Child side: a task of a parameter-server cluster that only serves (a worker or a
parameter server): ``tf.distribute.Server`` for its ``TF_CONFIG`` task, until it is killed.

The coordinator (the cell's process) schedules steps on the workers and keeps variables
on the parameter servers; these processes run no distbench code of their own after start.
Started by the local cluster launcher (distbench.launchers.cluster, task ``server``) or by
``distbench serve`` on the machines of a real cluster.
"""

from __future__ import annotations

import json
import os

from distbench.core.config import CellSpec
from distbench.core.errors import UserError

SERVING = ("worker", "ps")


def task_of(environ=os.environ) -> tuple[dict, str, int]:
    """(cluster, task type, task index) of this process's ``TF_CONFIG``; a UserError naming
    what is wrong when it does not name a serving task of its cluster."""
    raw = environ.get("TF_CONFIG")
    if not raw:
        raise UserError("TF_CONFIG is not set: a serving task needs its cluster and its task "
                        '({"cluster": {"chief": [...], "worker": [...], "ps": [...]}, "task": {"type": "ps", "index": 0}}).')
    try:
        config = json.loads(raw)
        cluster, kind, index = config["cluster"], config["task"]["type"], int(config["task"]["index"])
        cluster[kind][index]
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise UserError(f"TF_CONFIG does not name this task in its cluster ({type(exc).__name__}: {exc}).") from None
    if kind not in SERVING:
        raise UserError(f"TF_CONFIG's task is {kind} {index}; only {' and '.join(SERVING)} tasks serve "
                        "(the chief runs the cells: distbench run --strategy parameter_server).")
    return cluster, kind, index


def serve(spec: CellSpec | None = None, environ=os.environ) -> dict:
    """Starts this task's server and blocks until the process is killed (never returns).
    GPUs get memory growth first, so that a serving task does not take every GPU's memory;
    the spec's thread counts (set by the local launcher) size its thread pools."""
    import tensorflow as tf

    cluster, kind, index = task_of(environ)
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=spec.intra_op_threads if spec else 0,
        inter_op_parallelism_threads=spec.inter_op_threads if spec else 0,
    )
    try:
        server = tf.distribute.Server(tf.train.ClusterSpec(cluster), job_name=kind, task_index=index,
                                      protocol="grpc", config=config, start=True)
    except tf.errors.OpError as exc:   # "Could not start gRPC server": most often, the port is taken
        raise UserError(f"Cannot serve {kind} {index} at {cluster[kind][index]}: {exc.message} (is the port in use? "
                        "TF_CONFIG's address for this task must be free on this machine).") from None
    print(f"distbench: serving {kind} {index} at {cluster[kind][index]}", flush=True)
    server.join()
    raise RuntimeError("the server stopped")   # join() returns only if the server is stopped
