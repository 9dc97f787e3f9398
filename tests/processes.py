"""Helpers for tests that start real processes."""

import os


def gone(pid: int) -> bool:
    """True when no process has ``pid`` any more (killed and reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
