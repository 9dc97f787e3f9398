"""Child side: the project's files a cell's process reads from Python while it sets up and
trains (a learning rate in ``config.yaml``, a vocabulary file, an ``.npy`` of examples),
hashed into the record's ``definition["files"]``, so that stored runs whose code is the
same but whose settings files differ are not compared as one measurement
(:mod:`distbench.analysis.identity`). The workload's modules are hashed as code already
(:mod:`distbench.scenarios.definition`); this covers what that code reads.

Seen through Python's ``open`` audit event (PEP 578), which every Python-level open raises
(``open()``, ``pathlib``, ``numpy.load``, ``json``, ``yaml``, ``pandas``' readers), so a
workload needs no change. Files that TensorFlow's own C++ reads (a ``tf.data`` pipeline
over files, ``keras.utils.text_dataset_from_directory``) raise no event and are not
seen: a workload's arrays are hashed as examples instead (``data.fingerprint``).

"The project" is the working folder the command was typed in (a worker runs there), less
hidden folders (``.git``, ``.venv``, ``~/.keras``), installed code, distbench's cache and
the system's pseudo-files. Names are relative to it, so a moved project compares. A file
over :data:`HASHED_BYTES` is named by its size alone (a large data file: its examples are
hashed as such where they are arrays).

An audit hook cannot be removed: once installed, it stays for the process, and only an
``open`` event between :func:`start` and :func:`stop` does more than two comparisons. A
Keras 3 ``train_on_batch`` step raises about 24 events (mostly ``builtins.id``), each
about 0.27 microseconds dearer with the hook: some 6 microseconds of a 9 ms step (timed
here: a million ``id()`` calls, 119 ns without the hook and 386 ns with it).
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig

from distbench.core import cache

HASHED_BYTES = 8 << 20
_OUTSIDE = ("/proc/", "/sys/", "/dev/", *{sysconfig.get_path(k) + os.sep for k in ("stdlib", "platstdlib", "purelib",
                                                                                  "platlib") if sysconfig.get_path(k)})
_CODE = (".py", ".pyc", ".pyi", ".so")
_WRITING = os.O_WRONLY | os.O_RDWR
_ROOT: str | None = None
_SEEN: dict[str, None] | None = None   # absolute paths, in the order first read
_INSTALLED = False


def start(root: str | None = None) -> None:
    """From now on, note the files under ``root`` (the working folder) read from Python."""
    global _ROOT, _SEEN, _INSTALLED
    _ROOT, _SEEN = os.path.realpath(root or os.getcwd()) + os.sep, {}
    if not _INSTALLED:
        sys.addaudithook(_hook)
        _INSTALLED = True


def stop() -> dict[str, str]:
    """The files read since :func:`start`, by path relative to its root: a hash of each one's
    content (``size N`` over :data:`HASHED_BYTES`; a file deleted since is left out)."""
    global _SEEN
    seen, _SEEN = _SEEN or {}, None
    skip = cache.folder()
    found = {}
    for path in seen:
        if not os.path.isfile(path) or (skip and path.startswith(os.path.realpath(skip) + os.sep)):
            continue
        found[os.path.relpath(path, _ROOT)] = _content(path)
    return dict(sorted(found.items()))


def _hook(event: str, args: tuple) -> None:
    if event != "open" or _SEEN is None:
        return
    try:
        path, mode, flags = args
        if not isinstance(path, (str, bytes, os.PathLike)) or _writes(mode, flags):
            return
        path = os.path.realpath(os.fsdecode(path))
        if path.startswith(_ROOT) and _project_file(path[len(_ROOT):]) and not path.startswith(_OUTSIDE):
            _SEEN.setdefault(path)
    except Exception:  # noqa: BLE001 - an audit hook must never fail the open it watches
        return


def _writes(mode, flags) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return bool((flags or 0) & _WRITING)


def _project_file(relative: str) -> bool:
    parts = relative.split(os.sep)
    return (not relative.endswith(_CODE) and "__pycache__" not in parts
            and not any(p.startswith(".") for p in parts) and not {"site-packages", "dist-packages"} & set(parts))


def _content(path: str) -> str:
    try:
        size = os.path.getsize(path)
        if size > HASHED_BYTES:
            return f"size {size}"
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()[:12]
    except OSError as exc:
        return f"unreadable: {type(exc).__name__}"
