"""Child side: the project's files a cell's process reads from Python while it sets up and
trains (a learning rate in ``config.yaml``, a vocabulary, normalisation statistics beside
the examples, pretrained weights), hashed into the record's ``definition["files"]``, so
that stored runs whose code is the same but whose inputs differ are not compared as one
measurement (:mod:`distbench.analysis.identity`). The workload's modules are hashed as
code (:mod:`distbench.scenarios.definition`, once the cell has run, so a module imported
lazily counts); this covers what that code reads.

Seen through Python's ``open`` audit event (PEP 578), which every Python-level open raises
(``open()``, ``pathlib``, ``numpy.load``, ``json``, ``yaml``, ``pandas``' readers), so a
workload needs no change. Files that TensorFlow's own C++ reads (a ``tf.data`` pipeline
over files, ``keras.utils.text_dataset_from_directory``) raise no event and are not
seen: a workload's arrays are hashed as examples instead (``data.fingerprint``).

Two roots: the cell's data folder (``--data``, when it is a path), whose files are named
``<data>/...`` wherever it sits, and the working folder the command was typed in (a
worker runs there), whose files are named by their path relative to it; so a moved
project or data folder compares. Left out: code (``.py``, ``__pycache__``), files in hidden
folders (``.git``, ``.venv``, ``~/.keras``), installed code, distbench's cache, the
system's pseudo-files, and files the process also opened for writing (its own output, or
a cache it writes on a first run and reads on the next). A folder from which more than
:data:`FOLDER_FILES` files were read is one entry (``data/train/* (12,500 files)``), so a
record stays small.

An audit hook cannot be removed: once installed, it stays for the process. Between
:func:`start` and :func:`stop` an ``open`` notes its path (an ``os.open`` and ``close``
took 4.5 microseconds against 1.8 without the hook, timed here; the rest waits for
:func:`stop`, after the steps); any other event costs two comparisons. A Keras
3 ``train_on_batch`` step raises about 24 events (mostly ``builtins.id``), each about 0.27
microseconds dearer with the hook: some 6 microseconds of a 9 ms step (timed here: a
million ``id()`` calls, 119 ns without the hook and 386 ns with it).
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig

from distbench.core import cache

FOLDER_FILES = 32          # beyond this many files read from one folder, one entry for them all
CACHED_BYTES = 1 << 20     # a file at least this large has its hash cached by its size, time and inode
_OUTSIDE = ("/proc/", "/sys/", "/dev/", *{os.path.join(sysconfig.get_path(k), "") for k in (
    "stdlib", "platstdlib", "purelib", "platlib") if sysconfig.get_path(k)})
_CODE = (".py", ".pyc", ".pyi", ".so")
_ROOTS: list[tuple[str, str]] = []   # (folder with a trailing separator, its names' prefix)
_READ: dict[str, None] | None = None   # absolute paths, in the order first opened to read
_WRITTEN: set[str] = set()
_INSTALLED = False


def start(data: str | None = None) -> None:
    """From now on, note the files Python opens under the data folder ``data`` (when a
    path) and the working folder. A working folder that cannot be read turns it off
    (:func:`stop` then returns None)."""
    global _ROOTS, _READ, _WRITTEN, _INSTALLED
    _READ, _WRITTEN, _ROOTS = None, set(), []
    try:
        here = os.getcwd()
    except OSError:
        return
    if data and os.path.exists(data):
        folder = data if os.path.isdir(data) else os.path.dirname(os.path.abspath(data))
        _ROOTS += _forms(folder, "<data>/")
    _ROOTS += _forms(here, "")
    _READ = {}
    if not _INSTALLED:
        sys.addaudithook(_hook)
        _INSTALLED = True


def stop() -> dict[str, str] | None:
    """The files read since :func:`start` and not written, by name: each one's content
    hash, or a folder's (``folder/*``: ``hash (N files)``); None when it was off."""
    global _READ
    read, _READ = _READ, None
    if read is None:
        return None
    skip = cache.folder()
    skip = os.path.join(os.path.realpath(skip), "") if skip else None
    found: dict[str, str] = {}
    for path in read:
        real = os.path.realpath(path)
        name = _name(path, real)
        if (name is None or path in _WRITTEN or real in _WRITTEN or not os.path.isfile(real)
                or (skip and real.startswith(skip)) or real.startswith(_OUTSIDE)):
            continue
        found[name] = _content(real)
    return _by_folder(found)


def _hook(event: str, args: tuple) -> None:
    if event != "open" or _READ is None:
        return
    try:
        path, mode, flags = args
        if isinstance(path, int):
            return
        path = os.path.abspath(os.fsdecode(path))
        if _writes(mode, flags):
            _WRITTEN.add(path)
        else:
            _READ.setdefault(path)
    except Exception:  # noqa: BLE001 - an audit hook must never fail the open it watches
        return


def _writes(mode, flags) -> bool:
    """Opened to write only, or to replace or add to (``r+`` and ``O_RDWR`` read too)."""
    if isinstance(mode, str):
        return any(c in mode for c in "wax")
    flags = flags or 0
    return bool(flags & os.O_WRONLY or flags & (os.O_TRUNC | os.O_APPEND | os.O_CREAT))


def _forms(folder: str, prefix: str) -> list[tuple[str, str]]:
    """A root as given and as resolved (a symlinked project, or a link inside it)."""
    return [(os.path.join(f, ""), prefix) for f in dict.fromkeys((os.path.abspath(folder), os.path.realpath(folder)))]


def _name(path: str, real: str) -> str | None:
    """``path``'s name under the first root that holds it (as opened, else as resolved),
    or None when no root does or it is not a project's input file."""
    for candidate in (path, real):
        for root, prefix in _ROOTS:
            if candidate.startswith(root):
                relative = candidate[len(root):]
                if _project_file(relative):
                    return prefix + relative.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                return None
    return None


def _project_file(relative: str) -> bool:
    *folders, file = relative.split(os.sep)
    return (not file.endswith(_CODE) and "__pycache__" not in folders and not any(f.startswith(".") for f in folders)
            and not {"site-packages", "dist-packages"} & set(folders))


def _by_folder(found: dict[str, str]) -> dict[str, str]:
    """Folders with more than :data:`FOLDER_FILES` files read, as one entry each."""
    folders: dict[str, list[str]] = {}
    for name in found:
        folders.setdefault(os.path.dirname(name), []).append(name)
    merged = {}
    for folder, names in folders.items():
        if len(names) <= FOLDER_FILES:
            merged.update({n: found[n] for n in names})
            continue
        digest = hashlib.sha256("".join(f"{os.path.basename(n)}:{found[n]}\n" for n in sorted(names)).encode())
        merged[f"{folder}/*" if folder else "*"] = f"{digest.hexdigest()[:12]} ({len(names):,} files)"
    return dict(sorted(merged.items()))


def _content(path: str) -> str:
    try:
        stat = os.stat(path)
        key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}"
        where = cache.path("file", key, ".json") if stat.st_size >= CACHED_BYTES else None
        known = cache.read_json(where)
        if known and isinstance(known.get("sha256"), str):
            return known["sha256"]
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        value = digest.hexdigest()[:12]
        if where:
            cache.write_json(where, {"sha256": value, "path": path})
        return value
    except OSError as exc:
        return f"unreadable: {type(exc).__name__}"
