"""Child side: what code a cell ran, as hashes (asv's benchmark version).

``workload_code`` hashes the source of the workload's module and of every module of the
user's project it imports, followed however far down: a change in a helper module the
model uses (``utils.py``'s width) changes it, where the module's own source alone
(``workload``) had stayed the same for four models. Whole modules, not the names a class
uses: a config object, a lower-case setting, a ``functools.partial`` or a dict of classes
is code too, and a hash that followed names alone missed them (a reviewer's seven cases).
So editing another model of the same module still changes it (fails closed). "The user's
project" is modules in files outside the Python installation (its standard library, any
site-packages) and outside distbench; a built-in workload's are distbench's workload
modules instead. A module is named by its path relative to the working folder where it
was loaded from a file (``--workload model.py:Sentiment``, whose module name carries its
absolute path's hash), so a project moved, a CI workspace or ``check --against``'s
worktree hash the same code alike.

``workload`` and ``loop`` hash whole module sources, as every record has since before
``workload_code`` existed: ``compare`` uses the finest hash both runs recorded
(:meth:`distbench.storage.results.CellResult.workload_codes`).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import os
import sys
import sysconfig
import types
from pathlib import Path

import distbench.loops as loops
from distbench.core.errors import UserError
from distbench.core.worktrees import VERSION_ENV

# Where installed code lives: the standard library, and site-packages (Keras, TensorFlow, ...)
# wherever they are (a virtual environment may see the system's).
_STANDARD = tuple({sysconfig.get_path(k) for k in ("stdlib", "platstdlib")} - {None})
_INSTALLED = {"site-packages", "dist-packages"}
_OWN_WORKLOADS = "distbench.workloads"


def definition(workload, loop: str | None) -> dict:
    """The hashes of the cell's record: ``workload_code`` (the workload's code and its project's modules),
    ``workload`` and ``loop`` (their modules' sources)."""
    found = {"workload": _digest(_module_source(type(workload))),
             "workload_code": workload_code.__wrapped__(type(workload))}   # as the modules are now
    if loop is not None:
        found["loop"] = _digest(_module_source(type(loops.get(loop))))
    return found


@functools.lru_cache(maxsize=None)
def workload_code(cls: type) -> str:
    """The hash of ``cls``'s module and the project's modules it imports (the module's
    docstring); once per class in a process for the FLOPs cache's key (a module imported
    again makes a new class). The record's is computed again once the cell has run
    (:func:`definition`), when a module the workload imports lazily is imported too."""
    modules = _project_modules(cls)
    if not modules:
        return _digest(cls.__qualname__)
    return _digest("\n".join(f"# {label}\n{text}" for label, (_, text) in sorted(modules.items())))


def _project_modules(cls: type) -> dict[str, tuple[types.ModuleType, str]]:
    """``cls``'s module and the project's modules it imports, followed however far down:
    label -> (module, its source)."""
    start = sys.modules.get(cls.__module__)
    if start is None:
        return {}
    builtin = _is_distbench(start.__name__, _OWN_WORKLOADS)
    found_modules: dict[str, tuple[types.ModuleType, str]] = {}
    todo = [start]
    while todo:
        module = todo.pop()
        label = _label(module)
        if label in found_modules:
            continue
        source = _module_source_of(module)
        found_modules[label] = (module, source)
        for found in [*map(_module_of, list(vars(module).values())), *_imported(module, source)]:
            if found is not None and found is not module and _own(found, builtin):
                todo.append(found)
    return found_modules


class WorkingTreeCode(UserError):
    """Another version's worker ran the working tree's code: that side measured nothing of
    its own (never let through, as a crash of the checked side is not)."""


def check_version(cls: type) -> None:
    """In a worker of another version of the project, refuses a class (a workload, a user's
    loop or strategy) whose project modules were imported from the working tree instead (an
    editable install of the user's package, or an absolute PYTHONPATH into it): both sides
    would run the working tree's code, and the comparison would read ``same`` whatever the
    commit changed."""
    paths = os.environ.get(VERSION_ENV)
    if not paths or _is_distbench(cls.__module__, "distbench"):   # distbench's own: the same on both sides
        return
    root, version = (os.path.realpath(p) for p in paths.split(os.pathsep, 1))
    for module, _ in _project_modules(cls).values():
        path = os.path.realpath(getattr(module, "__file__", None) or "")
        if path and _inside(path, root) and not _inside(path, version):
            raise WorkingTreeCode(
                f"this version's worker imported {module.__name__} from the working tree ({path}), not from the "
                f"version's checkout, so both sides would run the working tree's code: an editable install of "
                f"your package, or an absolute PYTHONPATH into the project. Give its folder relative to the "
                f"project instead (PYTHONPATH=src), which each side reads in its own checkout.")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _module_of(value) -> types.ModuleType | None:
    """The module ``value`` is, or is defined in (a function's, a class's, an instance's class's)."""
    if isinstance(value, types.ModuleType):
        return value
    name = getattr(value, "__module__", None)
    return sys.modules.get(name) if isinstance(name, str) else None


def _imported(module: types.ModuleType, source: str) -> list[types.ModuleType]:
    """The modules ``source``'s import statements name (``from helper import WIDTH`` leaves
    only an int in the module's namespace), as this process imported them."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            package = (module.__package__ or "").split(".")
            base = ".".join([*package[:len(package) - node.level + 1], node.module or ""] if node.level else
                            [node.module or ""]).strip(".")
            names += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return [sys.modules[name] for name in names if name in sys.modules]


def _own(module: types.ModuleType, builtin: bool) -> bool:
    """A module of the user's project (``builtin``: of distbench's workloads)."""
    name = module.__name__
    if builtin:
        return _is_distbench(name, _OWN_WORKLOADS)
    if _is_distbench(name, "distbench"):
        return False
    path = getattr(module, "__file__", None)
    return (bool(path) and os.path.isfile(path) and not path.startswith(_STANDARD)
            and not _INSTALLED & set(Path(path).parts))


def _is_distbench(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _label(module: types.ModuleType) -> str:
    """A module's name, or for one loaded from a file by path its path relative to the
    working folder (its name has the absolute path's hash: distbench.core.references)."""
    path = getattr(module, "__file__", None)
    if not module.__name__.startswith("distbench_user_") or not path:
        return module.__name__
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else os.path.basename(path)


def _module_source_of(module) -> str:
    try:
        return inspect.getsource(module) if module is not None else ""
    except (OSError, TypeError):
        return getattr(module, "__name__", "")


def _module_source(cls: type) -> str:
    """What ``workload`` and ``loop`` hash: the module's source (the class's, else its name)."""
    module = sys.modules.get(cls.__module__)
    try:
        return inspect.getsource(module) if module else inspect.getsource(cls)
    except (OSError, TypeError):
        return cls.__qualname__


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]
