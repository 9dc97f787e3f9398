"""Process hygiene shared by the parent's launchers and the fork server's children (stdlib only).

The fork server (:mod:`distbench.scenarios.forkserver`) runs as a script that may serve
another code tree; it loads this file by its path, so it must import nothing of distbench.
"""

from __future__ import annotations

import signal


def die_with_parent() -> None:
    """Asks Linux to SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)   # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass   # not Linux: the launcher's own kill on exit still applies
