"""TPUStrategy, on a local TPU VM or the TPU named by TPU_NAME.

Availability only looks at the environment and /dev; the connection itself happens in
:meth:`create`, which runs inside a worker process under the launcher's deadline, and
under its own, shorter one (``--connect-deadline``): a TPU that is busy, preempted or
unreachable makes the connect or the initialise wait without end, and the cell should say
so in minutes, not after the cell's 15.
"""

from __future__ import annotations

import threading

from distbench.strategies.base import Availability, StrategyAdapter
from distbench.strategies.hardware import Hardware
from distbench.strategies.registry import STRATEGIES


@STRATEGIES.register
class TpuAdapter(StrategyAdapter):
    name = "tpu"
    summary = "TPUStrategy (TPU_NAME or a local TPU VM)"
    reads = ("connect_deadline_s",)

    def availability(self, hw: Hardware) -> Availability:
        if hw.tpu_address or (hw.local_tpu_devices and hw.libtpu_installed):
            return Availability.yes()
        local = (
            f"local devices {', '.join(hw.local_tpu_devices)} but libtpu is not installed"
            if hw.local_tpu_devices
            else "no local TPU"
        )
        return Availability.no(f"tpu: no TPU found (TPU_NAME unset, {local})")

    def create(self, hw: Hardware):
        import tensorflow as tf

        where = hw.tpu_address or "local"

        def connect():
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=where)
            if hw.tpu_address:
                tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return resolver

        resolver = within(self.connect_deadline_s, connect, f"connecting to and initialising the TPU ({where})")
        return tf.distribute.TPUStrategy(resolver)

    def compute_devices(self, hw: Hardware) -> list[str]:
        return []

    def device_names(self, hw: Hardware) -> list[str]:
        return []  # known only once connected; describe() reads them from the strategy

    def describe(self, strategy, hw: Hardware) -> dict:
        info = super().describe(strategy, hw)
        info["devices"] = list(strategy.extended.worker_devices)
        return info


class ConnectTimeout(TimeoutError):
    """A set-up step that did not finish within its deadline (the worker records a timeout)."""


def within(seconds: float, step, what: str):
    """``step()``'s value, or :class:`ConnectTimeout` when it has not returned in ``seconds``.

    The step runs in a daemon thread: a call blocked inside TensorFlow cannot be
    interrupted, so it is left behind, and the worker, once its record is written, exits
    without waiting for it (``os._exit``).
    """
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = step()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="distbench-tpu-connect", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise ConnectTimeout(f"tpu: {what} did not finish within {seconds:g} s (--connect-deadline); the TPU may be "
                             "busy with another job, preempted, or unreachable from here")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
