"""MultiWorkerMirroredStrategy: TensorFlow's collective runtime across processes.

The cluster comes from ``TF_CONFIG``, as Kubernetes training operators set it. With
``TF_CONFIG`` in the environment this process is one worker of a real cluster; without
it the launcher (``bench/cluster.py``) starts ``--workers N`` local processes on
127.0.0.1, each with its own ``TF_CONFIG``. Either way the strategy is built here, in a
worker process that runs under the launcher's deadline.
"""

from __future__ import annotations

import json
import os

from distbench.core.errors import UserError
from distbench.strategies.base import Availability, StrategyAdapter
from distbench.strategies.connect import share_machines, silent
from distbench.strategies.devices import DeviceSetup
from distbench.strategies.hardware import Hardware
from distbench.strategies.registry import STRATEGIES
from distbench.strategies.slurm import source, step_availability

# Keras 3's fit (and train_on_batch, which runs the same train function) cannot reduce
# per-replica outputs under this strategy: "Attempt to convert a value (PerReplica...)",
# then "Invalid reduction dimension 0 for input with 0 dimensions". The Keras maintainers:
# "Keras 3 does not work with tf.distribute.MultiWorkerMirroredStrategy" (#20585, open).
# tf-keras (Keras 2) does: its cells run all three loops.
TF_KERAS_HINT = "; --keras tf_keras measures it"   # a workload written for Keras 3 alone has no such way round
KERAS_LOOPS_REASON = (
    "multi_worker: Keras 3 does not support {loop} under MultiWorkerMirroredStrategy "
    "(keras-team/keras#20585, tensorflow/tensorflow#72388)" + TF_KERAS_HINT
)
KERAS_LOOPS = ("fit", "train_on_batch")


def tf_config() -> dict | None:
    """The parsed TF_CONFIG of this process; None when it is unset or empty (as TensorFlow
    reads it: ``export TF_CONFIG=`` in a job script means no cluster). A value that is not
    a JSON object is bad input: UserError, whichever strategy runs."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise UserError(f"TF_CONFIG is not valid JSON ({exc}); give the cluster and this task as JSON, "
                        '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}, '
                        "or unset it to run local processes.") from None
    if not isinstance(parsed, dict):
        raise UserError(f"TF_CONFIG is JSON but not an object (a {type(parsed).__name__}); give "
                        '{"cluster": {...}, "task": {...}}, or unset it to run local processes.')
    if not parsed.get("cluster") and not parsed.get("task"):
        return None   # "{}": an empty cluster, as TensorFlow reads it: none
    _check_parts(parsed)
    _check_jobs(parsed)
    _check_task(parsed)
    return parsed


ROLES = ("chief", "worker", "ps")   # the tasks distbench runs; an evaluator is none of its cells'


EXAMPLE = '{"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}, "task": {"type": "worker", "index": 0}}'


def _check_parts(parsed: dict) -> None:
    """A cluster (an object of jobs) and this process's task (an object with a type and an
    integer index): without one, every cross-process cell was skipped (exit 3) as if this
    machine lacked something; an index of "0" was named as a task the cluster lacks."""
    for part, what in (("cluster", "its jobs"), ("task", "this process's place in it")):
        if not isinstance(parsed.get(part), dict):
            raise UserError(f"TF_CONFIG has no {part!r} object ({what}); give both, e.g. {EXAMPLE}, or unset it to "
                            "run local processes.")
    task = parsed["task"]
    if "type" not in task or not isinstance(task.get("index"), int) or isinstance(task["index"], bool):
        raise UserError(f"TF_CONFIG's task is {json.dumps(task)}; give its type and an integer index, e.g. "
                        '"task": {"type": "worker", "index": 0}.')


def _check_jobs(parsed: dict) -> None:
    """Each of the cluster's jobs is a list of "host:port" strings: a job written as one
    string was counted by its characters ("14 workers"), ports given as numbers ended in a
    traceback, an address without a port failed the cell in TensorFlow, and a port past
    65535 waited out the connect deadline. And no two tasks at one address: TensorFlow failed
    the cell with "CreateContext failed. Context id: ... already exists", naming neither."""
    seen: dict[str, str] = {}
    for role, addresses in parsed["cluster"].items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise UserError(f"TF_CONFIG's cluster job {role!r} is {json.dumps(addresses)}; each job is a list of "
                            '"host:port" strings, e.g. {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}.')
        for i, address in enumerate(addresses):
            host, _, port = address.rpartition(":")
            if not host or not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise UserError(f"TF_CONFIG's {role} {i} is at {address!r}, which is not host:port with a port from "
                                '1 to 65535, e.g. "10.0.0.1:2222".')
            if address in seen:
                raise UserError(f"TF_CONFIG's cluster lists {address} twice ({seen[address]} and {role} {i}); give "
                                "each task an address of its own.")
            seen[address] = f"{role} {i}"


def _check_task(parsed: dict) -> None:
    """A task that its cluster does not have is bad input (it had crashed the cell in
    TensorFlow, "The task_id 5 exceeds the maximum id of worker", or waited out the connect
    deadline for index -1): UserError naming the valid indexes (:func:`_check_parts` and
    :func:`_check_jobs` have made it an object of lists, and the index an integer)."""
    cluster, task = parsed["cluster"], parsed["task"]
    if task["type"] not in ROLES or task["type"] not in cluster:
        # A chief its cluster does not list failed each cell in TensorFlow after its start-up; an
        # evaluator ran a local cell stored as the cluster's.
        why = "which distbench does not run" if task["type"] not in ROLES else "which its cluster does not have"
        raise UserError(f"TF_CONFIG's task is {task['type']} {task.get('index')!r}, {why}: its jobs are "
                        f"{', '.join(map(str, cluster)) or 'none'}; run distbench as the chief, a worker or a ps.")
    count, index = len(cluster[task["type"]]), task["index"]
    if not 0 <= index < count:
        raise UserError(f"TF_CONFIG's task is {task['type']} {index!r}, which its cluster does not have: its "
                        f"{task['type']} tasks are indexes 0 to {count - 1}.")


def is_chief(config: dict | None) -> bool:
    """Whether this task writes the record: the chief, or worker 0 when there is none."""
    if not config:
        return True
    task = config.get("task", {})
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and task.get("index") == 0


@STRATEGIES.register
class MultiWorkerAdapter(StrategyAdapter):
    name = "multi_worker"
    summary = "MultiWorkerMirroredStrategy over TF_CONFIG workers (local workers when unset)"
    reads = ("workers", "communication", "connect_deadline_s")
    across_processes = True

    def availability(self, hw: Hardware) -> Availability:
        parsed = tf_config()
        if parsed is None:
            step = step_availability(self.name)
            if step:
                return step
            return Availability.yes(f"{self.workers} local worker processes on 127.0.0.1")
        try:
            workers = parsed["cluster"]["worker"]
            parsed["task"]["index"]
        except (KeyError, TypeError) as exc:
            return Availability.no(f"multi_worker: TF_CONFIG has no {exc} (it needs cluster.worker and task.index)")
        if parsed["cluster"].get("ps"):
            return Availability.no("multi_worker: TF_CONFIG describes a parameter-server cluster (it has ps tasks); "
                                   "--strategy parameter_server runs on it")
        return Availability.yes(f"TF_CONFIG: {len(workers)} worker{'s' * (len(workers) != 1)}")

    def local_processes(self) -> int:
        # With TF_CONFIG set, this process is one worker of a real cluster: its single
        # worker process inherits TF_CONFIG and joins it.
        return 1 if tf_config() is not None else self.workers

    def multi_replica(self, hw: Hardware) -> bool:
        return True   # with TF_CONFIG this process is one of several workers

    def loop_unsupported(self, loop: str | None) -> str | None:
        if loop in KERAS_LOOPS and self.keras == "keras3":
            return KERAS_LOOPS_REASON.format(loop=loop)
        return None

    def device_setup(self, hw: Hardware) -> DeviceSetup:
        return DeviceSetup(memory_growth=bool(hw.gpus))

    def device_names(self, hw: Hardware) -> list[str]:
        return [f"/GPU:{i}" for i in range(len(hw.gpus))] or ["/CPU:0"]

    def create(self, hw: Hardware):
        import tensorflow as tf

        implementation = getattr(tf.distribute.experimental.CommunicationImplementation,
                                 self.communication_for(hw).upper())
        options = tf.distribute.experimental.CommunicationOptions(implementation=implementation)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)

    def joins(self) -> str | None:
        cluster = (tf_config() or {}).get("cluster")
        if not cluster:
            return None   # local workers: the launcher watches every one of them
        return f"multi_worker: joining the cluster ({', '.join(cluster.get('chief', []) + cluster.get('worker', []))})"

    def silent_peers(self) -> str:
        config = tf_config() or {}
        task = config.get("task", {})
        own = config.get("cluster", {}).get(task.get("type"), [])
        index = task.get("index", 0)
        return silent(config.get("cluster", {}), own[index] if isinstance(index, int) and 0 <= index < len(own) else None)

    def communication_for(self, hw: Hardware) -> str:
        """The collectives' implementation: NCCL on GPUs, ring otherwise, unless asked. (AUTO
        picks RING in eager mode, which sends GPU all-reduces over the host.)"""
        if self.communication != "auto":
            return self.communication
        return "nccl" if hw.gpus else "ring"

    def compute_devices(self, hw: Hardware) -> list[str]:
        return []

    def describe(self, strategy, hw: Hardware) -> dict:
        info = super().describe(strategy, hw)
        config = tf_config() or {}
        task = config.get("task", {})
        cluster = config.get("cluster", {})
        workers = cluster.get("chief", []) + cluster.get("worker", [])
        info.update({
            "workers": len(workers) if config else 1,
            "task_type": task.get("type"),
            "task_index": task.get("index"),
            "is_chief": is_chief(config),
            "communication": self.communication_for(hw),
            # local, slurm or tf_config; --workers 1 (no TF_CONFIG) is this one local process
            "cluster": source() if config else "local",
        })
        # (--workers 1 had read "0 worker processes ()", a cluster of the user's TF_CONFIG)
        info["notes"] = [f"{len(workers)} worker processes ({', '.join(workers)})" if config else
                         "1 worker process (--workers 1: this process alone, no cluster)"]
        # Workers on loopback share this machine's hardware, like virtual devices do.
        info["shared_hardware"] = share_machines(workers)
        return info
