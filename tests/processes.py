"""Helpers for tests that start real processes."""

import os
import time


def all_gone(pids: list[int], within_s: float = 30.0) -> bool:
    """Whether every one of ``pids`` is gone within ``within_s`` (polled: on a busy machine a
    process that was signalled may take seconds to exit)."""
    deadline = time.monotonic() + within_s
    while not all(gone(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def gone(pid: int) -> bool:
    """True when no process has ``pid`` any more, or it is a zombie (dead, not yet reaped:
    an orphan whose new parent, in a container, may never reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
