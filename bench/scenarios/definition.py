"""Child side: what code a cell ran, as hashes (asv's benchmark version).

``workload_code`` hashes the workload's own code and nothing else: its class's source, the
sources of its own base classes, and what that source names in its module: the functions,
classes and modules of the user's project it uses (followed the same way, however far
down) and the constants it reads (upper-case names, ``HIDDEN = 64``; other module-level
values are state, which running changes). Editing one model of a module leaves the other
models' hashes alone; a change in a helper the model calls (``utils.make_layers``) changes
its hash. "The user's project" is code in files outside the Python installation (its
standard library, any site-packages), and distbench's own workloads, whose base classes
(loss, optimizer, data loading) are part of every text model's definition, however
distbench is installed; the rest of distbench is not (its hash would differ between an
editable install and a wheel).

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
import textwrap
import types
from pathlib import Path

import distbench.loops as loops

# Where installed code lives: the standard library, and site-packages (Keras, TensorFlow, ...)
# wherever they are (a virtual environment may see the system's).
_STANDARD = tuple({sysconfig.get_path(k) for k in ("stdlib", "platstdlib")} - {None})
_INSTALLED = {"site-packages", "dist-packages"}
_OWN_WORKLOADS = "distbench.workloads"
_CONSTANTS = (int, float, complex, str, bytes, bool, type(None))
_LARGEST_CONSTANT = 10_000   # elements of a container read as a constant (a bigger one is data, not code)


def definition(workload, loop: str | None) -> dict:
    """The hashes of the cell's record: ``workload_code`` (the workload's own code),
    ``workload`` and ``loop`` (their modules' sources)."""
    found = {"workload": _digest(_module_source(type(workload))), "workload_code": workload_code(type(workload))}
    if loop is not None:
        found["loop"] = _digest(_module_source(type(loops.get(loop))))
    return found


def workload_code(cls: type) -> str:
    """The hash of ``cls``'s own code, as the module's docstring says."""
    parts: dict[str, str] = {}
    _follow(cls, parts)
    return _digest("\n".join(f"# {name}\n{text}" for name, text in sorted(parts.items())))


def _follow(obj, parts: dict[str, str]) -> None:
    """Adds ``obj``'s source, and what it names, to ``parts`` (key: its qualified name)."""
    key = f"{obj.__module__}:{obj.__qualname__}"
    if key in parts:
        return
    parts[key], node = _code(obj)
    if isinstance(obj, type):
        for base in obj.__mro__[1:]:
            if _own(base):
                _follow(base, parts)
    scope = vars(sys.modules[obj.__module__]) if obj.__module__ in sys.modules else {}
    for name, value in _named(node, scope):
        if name.rsplit(".", 1)[-1].isupper() and _plain(value):
            parts[f"{obj.__module__}:{name}"] = _repr(value)
        elif isinstance(value, types.ModuleType) and _own(value):
            parts[value.__name__] = _module_source_of(value)
        elif isinstance(value, (type, types.FunctionType)) and _own(value):
            _follow(value, parts)


def _named(node: ast.AST | None, scope: dict):
    """The (name, value) pairs of ``scope`` that ``node`` names, ``module.attribute`` resolved
    to the attribute (a helper module's one function, not all of it)."""
    for found in ast.walk(node) if node is not None else ():
        if isinstance(found, ast.Attribute) and isinstance(found.value, ast.Name):
            base = scope.get(found.value.id)
            if isinstance(base, types.ModuleType) and hasattr(base, found.attr):
                yield f"{found.value.id}.{found.attr}", getattr(base, found.attr)
        elif isinstance(found, ast.Name) and found.id in scope:
            value = scope[found.id]
            if not isinstance(value, types.ModuleType):   # a module named whole: its attributes above
                yield found.id, value


def _code(obj) -> tuple[str, ast.AST | None]:
    """``obj``'s source and its syntax tree: from its module's top-level definitions (the
    module parsed once), else from ``inspect`` (a nested definition)."""
    top = _definitions(obj.__module__).get(obj.__qualname__)
    if top is not None:
        return top
    try:
        text = inspect.getsource(obj)
    except (OSError, TypeError):   # no source file (an interactive definition): its name stands for it
        return obj.__qualname__, None
    try:
        return text, ast.parse(textwrap.dedent(text))
    except SyntaxError:
        return text, None


def _definitions(module_name: str) -> dict[str, tuple[str, ast.AST]]:
    """A module's top-level functions and classes: name -> (source with decorators, tree)."""
    return _parsed(_module_source_of(sys.modules.get(module_name)))


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> dict[str, tuple[str, ast.AST]]:
    """:func:`_definitions` of a module's text (parsed once per text: a module edited and
    imported again in this process is parsed again)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    lines = text.splitlines()
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            found[node.name] = ("\n".join(lines[start - 1:node.end_lineno]), node)
    return found


def _own(obj) -> bool:
    """Code of the user's project or distbench's workloads (the module's docstring)."""
    module = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", "") or ""
    if module == _OWN_WORKLOADS or module.startswith(_OWN_WORKLOADS + "."):
        return True
    if module == "distbench" or module.startswith("distbench."):
        return False
    try:
        path = inspect.getsourcefile(obj)
    except TypeError:   # built in
        return False
    return (bool(path) and os.path.isfile(path) and not path.startswith(_STANDARD)   # not frozen (<frozen abc>)
            and not _INSTALLED & set(Path(path).parts))


def _plain(value, room: int = _LARGEST_CONSTANT) -> bool:
    """A constant, or a container of constants (``SIZES = (64, 32)``)."""
    if isinstance(value, _CONSTANTS):
        return True
    if isinstance(value, dict):
        value = [x for kv in value.items() for x in kv]
    return isinstance(value, (tuple, list, set, frozenset)) and len(value) <= room and all(
        _plain(v, room // 10) for v in value)


def _repr(value) -> str:
    """A constant's text, the same in every process (a set's order is the string hash's, which
    changes between processes)."""
    if isinstance(value, (set, frozenset)):
        return f"{type(value).__name__}({sorted(map(_repr, value))})"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__}({[_repr(v) for v in value]})"
    if isinstance(value, dict):
        return f"dict({[(_repr(k), _repr(v)) for k, v in value.items()]})"
    return repr(value)


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
