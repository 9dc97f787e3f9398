"""Workloads, strategies and loops from outside this repository (parent and child).

Two ways in:

* **Entry points** of any installed package, in the groups ``distbench.workloads``,
  ``distbench.strategies`` and ``distbench.loops``: each names a class, registered under
  its ``name`` the first time its registry is read (:class:`bench.registry.Registry`).
* **References** on the command line or in the matrix file: ``module:Attribute`` (an
  importable module) or ``path/to/file.py:Attribute``. ``--workload my_models.py:Sentiment``
  loads the class, registers it, and selects it by its ``name``.

A cell's spec lists the references it needs (``CellSpec.plugins``, files made absolute),
so that its worker process, which starts from the built-in registries, loads the same
classes before it runs the cell (:func:`ensure`). A plugin class implements the same small
protocol as the built-ins: ``workloads.base.TextWorkload`` (or its shortcut
``TextClassifier``), ``strategies.StrategyAdapter``, ``bench.loops.TrainingLoop``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
import sys

from bench.errors import UserError

log = logging.getLogger(__name__)

KINDS = ("workload", "strategy", "loop")
GROUPS = {"workload": "distbench.workloads", "strategy": "distbench.strategies", "loop": "distbench.loops"}


def is_reference(name: str) -> bool:
    """``module:Attribute`` or ``file.py:Attribute`` (a registered name has no colon)."""
    return ":" in name


def canonical(ref: str) -> str:
    """The reference as a worker can load it from any directory (a file's path absolute)."""
    target, _, attr = ref.rpartition(":")
    if target.endswith(".py") or os.sep in target:
        return f"{os.path.abspath(target)}:{attr}"
    return ref


def registry_of(kind: str):
    if kind == "workload":
        from workloads.registry import WORKLOADS

        return WORKLOADS
    if kind == "strategy":
        from strategies.registry import STRATEGIES

        return STRATEGIES
    if kind == "loop":
        from bench.loops.base import LOOPS

        return LOOPS
    raise ValueError(f"Unknown plugin kind {kind!r}. Known: {', '.join(KINDS)}.")


def load(ref: str, kind: str) -> str:
    """Loads the class ``ref`` names, registers it as a ``kind``; returns its name."""
    cls = _import(ref)
    _check_protocol(cls, kind, ref)
    return register(cls, kind, where=ref)


def register(cls: type, kind: str, where: str) -> str:
    """Registers ``cls`` in the ``kind`` registry (again: a no-op; another class of the
    same name: a UserError naming both)."""
    registry = registry_of(kind)
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name or is_reference(name) or "-" in name:
        raise UserError(f"{where}: a {kind} class needs a `name` (a string without ':' or '-'); "
                        f"{getattr(cls, '__qualname__', cls)!r} has {name!r}.")
    if name in registry:
        known = registry.get(name)
        if _same(known, cls):
            return name
        raise UserError(f"{where}: {kind} name {name!r} is taken by {known.__module__}.{known.__qualname__}; "
                        "give the class another `name`.")
    registry.register(cls)
    return name


def ensure(refs) -> None:
    """Loads each reference a cell needs (in a worker, before the cell runs)."""
    if refs and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())   # module:Class as importable from where the run started
    for ref in refs or ():
        kind, _, target = ref.partition("=")
        load(target, kind)


def resolve(names: list[str], kind: str) -> tuple[list[str], list[str]]:
    """Names as given (references loaded and replaced by their names), and the references
    a cell's spec must carry (``kind=reference``)."""
    out, refs = [], []
    for name in names or []:
        if is_reference(name):
            ref = canonical(name)
            out.append(load(ref, kind))
            refs.append(f"{kind}={ref}")
        else:
            out.append(name)
    return out, refs


def load_declared(ref: str) -> str:
    """Loads a reference the matrix file's ``plugins`` lists (its kind read from the class:
    a StrategyAdapter, a TrainingLoop, else a workload) without selecting it; returns it as
    a cell's spec carries it (``kind=reference``)."""
    from bench.loops.base import TrainingLoop
    from strategies.base import StrategyAdapter

    ref = canonical(ref)
    cls = _import(ref)
    kind = ("strategy" if isinstance(cls, type) and issubclass(cls, StrategyAdapter) else
            "loop" if isinstance(cls, type) and issubclass(cls, TrainingLoop) else "workload")
    _check_protocol(cls, kind, ref)
    register(cls, kind, where=ref)
    return f"{kind}={ref}"


def load_entry_points(kind: str) -> None:
    """Registers every installed package's classes of ``kind`` (group ``distbench.<kind>s``).
    A plugin that fails to load is skipped with a warning naming it: one broken package
    must not stop the others."""
    from importlib.metadata import entry_points

    if kind not in GROUPS:
        return   # a registry of something else (tests make their own)
    for ep in entry_points(group=GROUPS[kind]):
        try:
            cls = ep.load()
            _check_protocol(cls, kind, f"entry point {ep.name} = {ep.value}")
            register(cls, kind, where=f"entry point {ep.name} = {ep.value}")
        except Exception as exc:  # noqa: BLE001 - reported, and the rest still load
            log.warning("distbench: skipped the %s plugin %s = %s: %s", kind, ep.name, ep.value, exc)


def _import(ref: str):
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr:
        raise UserError(f"Bad reference {ref!r}: give module:Attribute or path/to/file.py:Attribute.")
    if target.endswith(".py"):
        module = _load_file(target, ref)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise UserError(f"Cannot import {target!r} for {ref!r}: {exc}. Is it installed, or on PYTHONPATH? "
                            "A file is given as path/to/file.py:Attribute.") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        public = [n for n in vars(module) if not n.startswith("_")]
        raise UserError(f"{target} has no attribute {attr!r} (it has: {', '.join(public[:12])}).") from None


def _load_file(path: str, ref: str):
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise UserError(f"Cannot load {ref!r}: no file {path}.")
    name = f"distbench_user_{os.path.splitext(os.path.basename(path))[0]}_{hashlib.sha1(path.encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # The file's folder goes on sys.path, so that it can import its neighbours.
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.append(folder)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise UserError(f"Loading {path} for {ref!r} failed: {type(exc).__name__}: {exc}") from None
    return module


def _check_protocol(cls, kind: str, where: str) -> None:
    """The class implements the ``kind``'s protocol (checked before it is registered)."""
    if not isinstance(cls, type):
        raise UserError(f"{where}: expected a {kind} class, got {type(cls).__name__}.")
    if kind == "workload":
        needed = ("name", "kind", "build_model", "load_data", "loss", "metrics", "score", "cells", "resolve")
    elif kind == "strategy":
        from strategies.base import StrategyAdapter

        if not issubclass(cls, StrategyAdapter):
            raise UserError(f"{where}: a strategy must subclass strategies.StrategyAdapter.")
        needed = ("name", "availability", "create")
    else:
        from bench.loops.base import TrainingLoop

        if not issubclass(cls, TrainingLoop):
            raise UserError(f"{where}: a loop must subclass bench.loops.TrainingLoop.")
        needed = ("name", "train")
    missing = [m for m in needed if not hasattr(cls, m)]
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing or abstract:
        raise UserError(f"{where}: {cls.__qualname__} does not implement the {kind} protocol: missing "
                        f"{', '.join(missing + abstract)} (see docs/own-model.md).")


def _same(a: type, b: type) -> bool:
    """The same class, or the same class loaded again (same module file and qualified name)."""
    if a is b:
        return True
    file_a = getattr(sys.modules.get(a.__module__), "__file__", None)
    file_b = getattr(sys.modules.get(b.__module__), "__file__", None)
    return a.__qualname__ == b.__qualname__ and file_a is not None and file_a == file_b
