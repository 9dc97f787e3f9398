"""ParameterServerStrategy: variables on parameter servers, steps scheduled on workers.

A cluster has a coordinator (``chief``), workers and parameter servers (``ps``). Workers
and parameter servers only serve (``tf.distribute.Server``); the coordinator runs the
cell: it builds the model (its variables live on the parameter servers) and schedules
steps with ``ClusterCoordinator.schedule`` to whichever worker is free, asynchronously.

Without ``TF_CONFIG`` the launcher (distbench.launchers.cluster) starts a local cluster on
127.0.0.1: the coordinator, ``--workers N`` workers and ``--ps M`` parameter servers, each
a real process under the cell's deadline that dies with the parent. With ``TF_CONFIG``
(or a SLURM job step) this process is the coordinator of a real cluster whose other
tasks run ``distbench serve``.

What a "step" means here: the coordinator schedules a unit of steps and waits for all of
them (``join``, the sync point); the unit's wall time over its steps is one sample, so
step times are coordinator-side throughput over scheduled steps (the loops' unit:
distbench.loops.base.scheduled_unit; ``steps_per_sample`` in the record).
"""

from __future__ import annotations

from distbench.strategies.base import Availability, StrategyAdapter
from distbench.strategies.devices import DeviceSetup
from distbench.strategies.hardware import Hardware
from distbench.strategies.connect import share_machines, silent, within
from distbench.strategies.multi_worker import TF_KERAS_HINT, tf_config
from distbench.strategies.registry import STRATEGIES
from distbench.strategies.slurm import source, step_availability

TRAIN_ON_BATCH_REASON = (
    "parameter_server: train_on_batch does not schedule steps on the workers (no ClusterCoordinator in "
    "Model.train_on_batch; the coordinator would train alone); the custom loop and fit measure this strategy"
)
KERAS3_FIT_REASON = (
    "parameter_server: Keras 3 fit does not support ParameterServerStrategy (\"To use this dataset, you need to "
    "pass this dataset to ClusterCoordinator.create_per_worker_dataset\")" + TF_KERAS_HINT
)
ROLES = ("chief", "worker", "ps")


def cluster_roles(config: dict) -> dict[str, int]:
    """How many tasks of each role a parameter-server ``TF_CONFIG`` names; a ValueError
    naming what is missing when it is not one (a chief, workers and parameter servers)."""
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict):
        raise ValueError("no cluster")
    missing = [role for role in ROLES if not cluster.get(role)]
    if missing:
        raise ValueError(f"its cluster has no {' and no '.join(missing)} (a parameter-server cluster needs a chief, "
                         "workers and ps)")
    task = config.get("task") or {}
    if task.get("type") not in ROLES or not isinstance(task.get("index"), int):
        raise ValueError(f"its task must be one of {', '.join(ROLES)} with an index; received {task!r}")
    if task["index"] >= len(cluster[task["type"]]):
        raise ValueError(f"task {task['type']} {task['index']} is not in its cluster")
    return {role: len(cluster[role]) for role in ROLES}


@STRATEGIES.register
class ParameterServerAdapter(StrategyAdapter):
    name = "parameter_server"
    summary = "ParameterServerStrategy: a coordinator, workers and parameter servers (local when TF_CONFIG is unset)"
    reads = ("workers", "ps", "connect_deadline_s")
    across_processes = True

    def availability(self, hw: Hardware) -> Availability:
        config = tf_config()
        if config is None:
            step = step_availability(self.name, self.ps)
            if step:
                return step
            return Availability.yes(f"a coordinator, {self.workers} worker{'s' * (self.workers != 1)} and "
                                    f"{self.ps} parameter server{'s' * (self.ps != 1)} on 127.0.0.1")
        try:
            roles = cluster_roles(config)
        except ValueError as exc:
            return Availability.no(f"parameter_server: TF_CONFIG is set but unusable: {exc}")
        task = config["task"]
        if task["type"] != "chief":
            whose = "the SLURM job step's" if source() == "slurm" else "TF_CONFIG's"
            return Availability.no(f"parameter_server: this process is {task['type']} {task['index']} of {whose} "
                                   "cluster; run `distbench serve` here (the chief runs the cells)")
        return Availability.yes(f"TF_CONFIG: {roles['worker']} workers, {roles['ps']} parameter servers")

    def local_processes(self) -> int:
        return 1 if tf_config() is not None else 1 + self.workers + self.ps

    def local_tasks(self) -> list[tuple[str, int, bool]]:
        # The servers first, so that they listen when the coordinator connects.
        return ([("ps", j, False) for j in range(self.ps)] + [("worker", i, False) for i in range(self.workers)]
                + [("chief", 0, True)])

    def multi_replica(self, hw: Hardware) -> bool:
        return True

    def loop_unsupported(self, loop: str | None) -> str | None:
        if loop == "train_on_batch":
            return TRAIN_ON_BATCH_REASON
        if loop == "fit" and self.keras == "keras3":
            return KERAS3_FIT_REASON
        return None

    def device_setup(self, hw: Hardware) -> DeviceSetup:
        return DeviceSetup(memory_growth=bool(hw.gpus))

    def device_names(self, hw: Hardware) -> list[str]:
        return ["/CPU:0"]   # the coordinator's: the replicas run on the workers

    def compute_devices(self, hw: Hardware) -> list[str]:
        return []

    def create(self, hw: Hardware):
        import tensorflow as tf

        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        cluster = (tf_config() or {}).get("cluster", {})
        tasks = ", ".join(cluster.get("worker", []) + cluster.get("ps", [])) or "its tasks"
        # A local cluster's tasks distbench started itself: "start `distbench serve`" was no advice there.
        serving = ("one of the tasks distbench started here that has not started serving yet (a --connect-deadline "
                   "too short for their start), or has stopped," if source() == "local" else
                   "a task that is not serving (start `distbench serve` on each), has stopped, or cannot be reached "
                   "from here")
        return within(self.connect_deadline_s, lambda: tf.distribute.ParameterServerStrategy(resolver),
                      f"parameter_server: connecting to the cluster's workers and parameter servers ({tasks})",
                      f"{serving} keeps the coordinator waiting",
                      lambda: silent({role: cluster.get(role, []) for role in ("worker", "ps")}))

    def describe(self, strategy, hw: Hardware) -> dict:
        info = super().describe(strategy, hw)
        cluster = (tf_config() or {}).get("cluster", {})
        info.update({
            "workers": len(cluster.get("worker", [])),
            "parameter_servers": len(cluster.get("ps", [])),
            "is_chief": True,
            "cluster": source(),   # local, slurm or tf_config
        })
        hosts = [h for role in ROLES for h in cluster.get(role, [])]
        info["notes"] = [
            f"coordinator {', '.join(cluster.get('chief', []))}, workers {', '.join(cluster.get('worker', []))}, "
            f"parameter servers {', '.join(cluster.get('ps', []))}",
            "steps are scheduled asynchronously to free workers; each sample is a unit of scheduled steps up to the "
            "coordinator's join, over their count (coordinator-side throughput; steps_per_sample)",
            "each worker reads its own copy of the training set, the seeded shuffle from an offset of its own "
            "(no per-worker shard)",
        ]
        info["shared_hardware"] = share_machines(hosts)
        return info
