"""Helpers for tests that start real processes."""

import os


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
