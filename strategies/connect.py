"""A strategy's connection, under its own deadline (``--connect-deadline``).

Creating a TPUStrategy connects to and initialises the TPU; creating a
ParameterServerStrategy waits in TensorFlow's ``context.ensure_initialized`` until every
worker and parameter server answers. A TPU that is busy or preempted, or a task that was
never started or cannot be reached, makes that wait last until the cell's own deadline (15
minutes by default) with nothing said; the cell should say so in minutes, and name what it
waited for. (A MultiWorkerMirroredStrategy waits in the same call for its peers, but holds
Python's lock while it does: no thread of the worker runs until it returns. Its parent
keeps that deadline instead: the worker marks a file once its strategy is made
(:func:`joined`), and a worker without the mark by then is killed by its launcher.)
"""

from __future__ import annotations

import socket
import threading
import time

_marker: list[str] = []   # the file this worker marks once its strategy is made (set by its entry point)


class ConnectTimeout(TimeoutError):
    """A set-up step that did not finish within its deadline (the worker records a timeout)."""


PROBE_S = 2.0   # how long a task's address may take to accept a connection, when asked why a wait ran out


def silent(cluster: dict, skip: str | None = None) -> str:
    """Which tasks of ``cluster`` (TF_CONFIG's: role -> ``["host:port", ...]``) accept no
    connection now, said for a connect deadline's reason (``"; nothing accepts a connection
    at worker 1 (127.0.0.1:2222: Connection refused)"``); "" when every task does (one that
    listens and has not joined is left to the reason's own line). ``skip``: this task's
    address. Each address is tried at once, for at most :data:`PROBE_S` (twice that with its
    name lookup, which is left behind on a daemon thread)."""
    tasks = [(f"{role} {i}", address) for role, addresses in cluster.items()
             for i, address in enumerate(addresses) if address != skip]
    if not tasks:
        return ""
    answers: list[str | None] = [f"no answer within {2 * PROBE_S:g} s"] * len(tasks)   # a name lookup that hangs

    def probe(i: int) -> None:
        answers[i] = _refusal(tasks[i][1])

    probes = [threading.Thread(target=probe, args=(i,), name="distbench-probe", daemon=True) for i in range(len(tasks))]
    for thread in probes:
        thread.start()
    until = time.monotonic() + 2 * PROBE_S   # a connection's own timeout does not bound its name lookup
    for thread in probes:
        thread.join(max(0.0, until - time.monotonic()))
    down = [f"{name} ({address}: {why})" for (name, address), why in zip(tasks, answers) if why]
    return f"; nothing accepts a connection at {', '.join(down)}" if down else ""


def _refusal(address: str) -> str | None:
    """Why nothing at ``address`` accepted a connection; None when something did."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_S):
            return None
    except (OSError, ValueError) as exc:
        return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def within(seconds: float, step, what: str, why: str, said=lambda: ""):
    """``step()``'s value, or :class:`ConnectTimeout` when it has not returned in ``seconds``
    (``what`` did not finish ...; ``why``, the likely causes; ``said()``, what was found then).

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

    thread = threading.Thread(target=run, name="distbench-connect", daemon=True)
    thread.start()
    thread.join(min(seconds, threading.TIMEOUT_MAX))   # more: OverflowError (a --connect-deadline of 1e10)
    if thread.is_alive():
        raise ConnectTimeout(f"{what} did not finish within {seconds:g} s (--connect-deadline); {why}{said()}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def joined_path(record_path: str) -> str:
    """The file a worker marks once its strategy is made, beside its record."""
    return record_path + ".joined"


def mark_joined_at(path: str) -> None:
    """This worker marks ``path`` once its strategy is made (:func:`joined`)."""
    _marker[:] = [path]


def joined() -> None:
    """Says to the parent that this worker's strategy is made (its cluster joined)."""
    for path in _marker:
        with open(path, "w"):
            pass


THIS_MACHINE = "this machine"


def share_machines(addresses: list[str]) -> bool:
    """Whether a cluster's tasks (``host:port``) share hardware: all of them on this machine,
    or two on one host. A host is resolved (``vm`` for 127.0.0.1, this machine's own address,
    had read as separate machines, and their efficiency as real scaling)."""
    own = _own_addresses()   # once: a name lookup
    machines = [_machine(address.rsplit(":", 1)[0], own) for address in addresses]
    return all(m == THIS_MACHINE for m in machines) or len(set(machines)) < len(machines)


def _machine(host: str, own: set[str]) -> str:
    """``host``'s address, or :data:`THIS_MACHINE` for a loopback one or one of ``own``."""
    try:
        address = socket.gethostbyname(host)
    except OSError:
        return host   # unresolved here: named as given
    return THIS_MACHINE if address.startswith("127.") or address in own else address


def _own_addresses() -> set[str]:
    try:
        return set(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        return set()
