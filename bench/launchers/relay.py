"""Parent side: the relay that passes the turn between the two workers of a lockstep pair.

The protocol and the worker's half: :mod:`distbench.core.lockstep`, :mod:`distbench.trackers.lockstep`.
"""

from __future__ import annotations

import os
import select
import time

from distbench.core.lockstep import DONE, GO, READY, prefix


HELD_S = 5.0   # a turn held this long is no step of a cell that runs (tens of ms here): the holder hung


class Relay:
    """Passes the turn between the workers of one pair (parent side)."""

    def __init__(self, folder: str, names: list[str]) -> None:
        self.names = names
        self._fds: dict[str, tuple[int, int]] = {}
        for name in names:
            fifos = prefix(folder, name)
            os.mkfifo(fifos + ".go")
            os.mkfifo(fifos + ".done")
            # O_RDWR never blocks on a FIFO (Linux): the worker's opens then succeed at once.
            self._fds[name] = (os.open(fifos + ".go", os.O_RDWR), os.open(fifos + ".done", os.O_RDWR))
        self.folder = folder
        self.stalled: str | None = None   # the first worker whose process ended while it held the turn
        self.held_s = 0.0                 # for how long it had held it

    def run(self, alive, poll_s: float = 0.2) -> None:
        """Turns in order until every worker has ended (``alive(name)``: its process runs)."""
        active = list(self.names)
        while active:
            for name in list(active):
                message = self._next(name, alive, poll_s)
                if message == READY:
                    os.write(self._fds[name][0], GO)
                    began = time.monotonic()
                    said = self._next(name, alive, poll_s)
                    if said is None and self.stalled is None:
                        self.stalled, self.held_s = name, time.monotonic() - began
                    if said != DONE:
                        active.remove(name)
                else:                      # END, or the process is gone
                    active.remove(name)
        for name in self.names:           # everyone has finished: release them to evaluate
            os.write(self._fds[name][0], GO)

    def _next(self, name: str, alive, poll_s: float) -> bytes | None:
        """The worker's next message; None once its process has ended."""
        fd = self._fds[name][1]
        while True:
            ready, _, _ = select.select([fd], [], [], poll_s)
            if ready:
                return os.read(fd, 1)
            if not alive(name):
                return None

    def blame(self, records: dict) -> dict:
        """``records`` by name, a worker that timed out waiting for its turn said so, with how
        long the other had held it: a side whose process hung in its step held the turn, and
        its partner's "timed out" had read as a hang of both sides. Not for a turn held
        briefly (a pair that outlasted its deadline stepping as usual: no one's hang)."""
        hung = (records.get(self.stalled) or {}).get("error_kind") == "timeout"
        if self.stalled is None or not hung or self.held_s < HELD_S:
            return records   # its process crashed in its turn (the partner stepped on alone), or no hang
        waited = {name: {**r, "reason": f"{r.get('reason', '')} (waiting for its turn, which side {self.stalled} "
                                        f"had held for {self.held_s:.0f} s when its process ended)"}
                  for name, r in records.items() if name != self.stalled and r.get("error_kind") == "timeout"}
        return {**records, **waited}

    def close(self) -> None:
        for go, done in self._fds.values():
            os.close(go)
            os.close(done)
