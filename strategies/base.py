"""The shape every strategy adapter shares."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from distbench.strategies.devices import DeviceSetup
from distbench.strategies.hardware import Hardware

if TYPE_CHECKING:
    import tensorflow as tf


# Every adapter's constructor takes these (from the cell's spec of the same names).
SETTINGS = ("devices", "virtual_memory_mb", "workers", "ps", "cross_device_ops", "communication", "connect_deadline_s")


@dataclass(frozen=True)
class Availability:
    """Whether an adapter can run here; ``reason`` says why not (or notes a fallback)."""

    ok: bool
    reason: str = ""

    @classmethod
    def yes(cls, note: str = "") -> "Availability":
        return cls(True, note)

    @classmethod
    def no(cls, reason: str) -> "Availability":
        return cls(False, reason)


# Strategies built in this process, by adapter and devices. Two MirroredStrategy
# instances in one process allocate the same collective instance keys and abort each
# other's all-reduces ("Shape mismatch in the collective instance 100",
# tensorflow/tensorflow#62790), so a process builds each strategy once and reuses it.
_built: dict[tuple, "tf.distribute.Strategy"] = {}


class StrategyAdapter(abc.ABC):
    """Builds one kind of ``tf.distribute.Strategy`` and says what it ran on.

    Subclasses set ``name`` and ``summary`` and implement the four steps: a
    side-effect-free :meth:`availability`, the :meth:`device_setup` to make before
    TensorFlow initialises, :meth:`create`, and :meth:`describe` (plain JSON values).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    # Trains across processes (one per worker, or per machine): where teams use tf-keras,
    # so a selection that names no Keras runs these cells under both (distbench.session.plan).
    across_processes: ClassVar[bool] = False
    # The cell settings (CellSpec fields) the adapter reads: the others are set to their
    # defaults in its cells, so that a setting meant for another strategy (--devices for
    # `virtual`) neither renames these cells nor makes their stored runs incomparable.
    # A user's adapter may read any of them.
    reads: ClassVar[tuple[str, ...]] = SETTINGS

    def __init__(self, devices: int = 2, virtual_memory_mb: int = 2048, workers: int = 2,
                 cross_device_ops: str = "auto", communication: str = "auto",
                 connect_deadline_s: float = 180.0, keras: str = "keras3", ps: int = 1) -> None:
        # Only `virtual` uses devices and memory, only `multi_worker` workers and
        # communication, only the MirroredStrategy adapters cross-device ops, only `tpu`
        # the connect deadline, only the cross-process adapters the Keras flavour; every
        # adapter accepts them so the runner can build any adapter from one configuration.
        self.devices = devices
        self.virtual_memory_mb = virtual_memory_mb
        self.workers = workers
        self.cross_device_ops = cross_device_ops
        self.communication = communication
        self.connect_deadline_s = connect_deadline_s
        self.keras = keras   # the cell's Keras flavour (distbench.core.keras_flavour)
        self.ps = ps         # parameter servers of a local parameter_server cluster

    @abc.abstractmethod
    def availability(self, hw: Hardware) -> Availability:
        """Whether this adapter can run on ``hw``; never touches the runtime."""

    def local_processes(self) -> int:
        """How many processes the launcher must start for one cell (1: a plain worker)."""
        return 1

    def local_tasks(self) -> list[tuple[str, int, bool]]:
        """The tasks of a local cluster, in start order: (TF_CONFIG task type, index, whether
        it runs the cell; the others only serve). The first task that runs the cell writes
        the record."""
        return [("worker", i, True) for i in range(self.local_processes())]

    def loop_unsupported(self, loop: str | None) -> str | None:
        """Why ``loop`` cannot run under this strategy (a known upstream failure), or None."""
        return None

    def multi_replica(self, hw: Hardware) -> bool:
        """Whether a cell runs more than one replica (decided without starting TensorFlow)."""
        return len(self.device_names(hw)) > 1 or self.local_processes() > 1

    def jit_unsupported(self, hw: Hardware) -> str | None:
        """Why XLA (``jit_compile``) cannot run under this strategy here, or None."""
        if self.multi_replica(hw):
            # Reproduced here on two logical CPUs; on GPUs: keras-team/keras#18145, tensorflow#53140.
            return (f"{self.name}: XLA (jit_compile) fails with several replicas (\"Trying to access resource "
                    "... located in device ...:1\", keras-team/keras#19005); Keras's own jit_compile='auto' "
                    "turns XLA off under tf.distribute")
        return None

    def device_setup(self, hw: Hardware) -> DeviceSetup:
        """The once-per-process device configuration this adapter needs."""
        return DeviceSetup()

    @abc.abstractmethod
    def create(self, hw: Hardware) -> "tf.distribute.Strategy":
        """Builds a new strategy (after :meth:`device_setup` has been applied)."""

    def build(self, hw: Hardware) -> "tf.distribute.Strategy":
        """This process's strategy for this adapter and these devices (built once)."""
        key = (self.name, tuple(self.device_names(hw)), self.cross_device_ops, self.communication)
        if key not in _built:
            _built[key] = self.create(hw)
        return _built[key]

    def joins(self) -> str | None:
        """What creating the strategy waits for that only the parent can bound, because the
        wait holds Python's lock (``multi_worker``'s peers under ``TF_CONFIG``); None."""
        return None

    def silent_peers(self) -> str:
        """What of :meth:`joins`'s cluster accepts no connection now (:func:`connect.silent`),
        said when the wait ran out; "" by default."""
        return ""

    def device_names(self, hw: Hardware) -> list[str]:
        """The devices the strategy's replicas run on."""
        return ["/GPU:0" if hw.gpus else "/CPU:0"]

    def compute_devices(self, hw: Hardware) -> list[str]:
        """Devices a non-distributed workload (matmul) should time under this adapter."""
        return ["/CPU:0"]

    def describe(self, strategy: "tf.distribute.Strategy", hw: Hardware) -> dict:
        """Plain-JSON facts about the built strategy."""
        return {
            "strategy": self.name,
            "class": type(strategy).__name__,
            "replicas": int(strategy.num_replicas_in_sync),
            "devices": self.device_names(hw),
            "virtual_devices": False,
            "notes": [],
        }


def cross_device_ops(name: str):
    """The ``tf.distribute`` cross-device ops for an option value (None: TensorFlow's choice)."""
    if name == "auto":
        return None
    import tensorflow as tf

    return {
        "nccl": tf.distribute.NcclAllReduce,
        "hierarchical_copy": tf.distribute.HierarchicalCopyAllReduce,
        "one_device": tf.distribute.ReductionToOneDevice,
    }[name]()
