"""Atomic file writes: a crash or Ctrl-C mid-write never leaves a half-written file.

As pip's ``adjacent_tmp_file``: write a temporary file in the same folder, flush and
fsync it, then ``os.replace`` it over the target (atomic on POSIX and Windows).
"""

from __future__ import annotations

import json
import math
import os
import tempfile


def _default_mode() -> int:
    """0o666 less the umask: the mode ``open()`` would give a new file (mkstemp gives 0o600)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


_MODE = _default_mode()


def atomic_write_text(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=folder)
    try:
        os.fchmod(fd, _MODE)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def dumps(value) -> str:
    """Stable, strict JSON (sorted keys; NaN and infinity stored as null)."""
    return json.dumps(_finite(value), indent=2, sort_keys=True, allow_nan=False) + "\n"


def atomic_write_json(path: str, value) -> None:
    atomic_write_text(path, dumps(value))


def _finite(value):
    """JSON has no NaN or infinity: store them as null rather than invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def project_root() -> str:
    """The folder holding distbench's source folders (``bench/``, ``strategies/``, ...): its
    checkout in an editable install (git describes its commit), else the installed tree."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
