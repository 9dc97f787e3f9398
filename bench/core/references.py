"""References to classes outside distbench: ``module:Attribute`` and ``path/to/file.py:Attribute``.

Resolution only: which class a reference names. Registering it is the registries' part
(:class:`distbench.core.registry.Registry`), and which registry a reference goes to is
:mod:`distbench.plugins`'.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import re
import sys

from distbench.core import worktrees
from distbench.core.errors import UserError


def is_reference(name: str) -> bool:
    """``module:Attribute`` or ``file.py:Attribute`` (a registered name has no colon)."""
    return ":" in name


def canonical(ref: str) -> str:
    """The reference as a worker can load it from any directory (a file's path absolute)."""
    body, folder = split_folder(ref)
    target, _, attr = body.rpartition(":")
    if target.endswith(".py") or os.sep in target:
        return with_folder(f"{os.path.abspath(target)}:{attr}", folder)
    return ref


def with_folder(ref: str, folder: str | None) -> str:
    """``ref`` imported from ``folder`` as well (``module:Attribute@/abs/folder``): a matrix
    file's references import from the file's folder, wherever the command is typed."""
    return f"{ref}@{folder}" if folder else ref


# ``...:Attribute@/folder``: the folder follows the attribute's name (a path may hold '@').
_FOLDER = re.compile(r"(.*:(?:[A-Za-z_][\w.]*)?)@(/.*)")   # no attribute: refused by find, as typed


def split_folder(ref: str) -> tuple[str, str | None]:
    """``(reference, its import folder or None)``."""
    found = _FOLDER.fullmatch(ref)
    return (found.group(1), found.group(2)) if found else (ref, None)


def find(ref: str):
    """The object ``ref`` names (a UserError saying what is wrong when it cannot)."""
    body, folder = split_folder(ref)
    target, sep, attr = body.rpartition(":")
    if not sep or not target or not attr:
        raise UserError(f"Bad reference {body!r}: give module:Attribute or path/to/file.py:Attribute.")
    # As ``python -m`` in the project: the reference's folder (a matrix file's) first, then
    # the working directory (the console script's sys.path has its own folder instead, and
    # a worker starts in its side's folder).
    for place in (os.getcwd(), folder):
        if place and place not in sys.path:
            sys.path.insert(0, place)
    if target.endswith(".py"):
        module = _load_file(target, body)
    else:
        try:
            with _hard_exits_refused():
                module = importlib.import_module(target)
        except ImportError as exc:
            raise UserError(f"Cannot import {target!r} for {body!r}: {exc}. Is it installed, or on PYTHONPATH? "
                            "A file is given as path/to/file.py:Attribute.") from None
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's module failed while importing: one line
            said = _one_line(exc)
            raise UserError(f"Importing {target!r} for {body!r} failed: {said}"
                            f"{stdlib_shadow(said, [os.getcwd(), folder])}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UserError(f"{target} has no attribute {attr!r} ({_classes(module)}).") from None


def _classes(module) -> str:
    """The classes a reference to ``module`` could name: those it defines (not the modules or
    base classes it imports), else every class in it."""
    classes = [n for n, v in vars(module).items() if isinstance(v, type) and not n.startswith("_")]
    own = [n for n in classes if getattr(vars(module)[n], "__module__", None) == module.__name__]
    if own or classes:
        return f"the classes it {'defines' if own else 'holds'}: {', '.join((own or classes)[:12])}"
    return "it defines no class"


def _load_file(path: str, ref: str):
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        version = worktrees.inside(path)   # a revision's worktree (check --against, bisect)
        if version:
            commit, _, rest = version.partition("/")
            raise UserError(f"Cannot load {ref!r}: commit {commit} has no file {rest} (a file that is not "
                            "committed, untracked or added later, is only in the working tree: commit it to measure "
                            "it at a revision).")
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
        sys.path.insert(0, folder)   # its own folder first, as Python runs a script
    try:
        with _hard_exits_refused():
            spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:   # SystemExit: a script's sys.exit(main()) or parse_args() at import
        del sys.modules[name]
        said, relative = _one_line(exc), isinstance(exc, ImportError) and "relative import" in str(exc)
        hint = "; a file that imports relative to its package is named as a module: package.module:Class" \
            if relative else stdlib_shadow(said, [folder, os.getcwd()])
        raise UserError(f"Loading {path} for {ref!r} failed: {said}{hint}") from None
    return module


_IMPORT_SHAPED = re.compile(r"No module named '([\w.]+)'|cannot import name '\w+' from '([\w.]+)'|"
                            r"partially initialized module '([\w.]+)'|module '([\w.]+)' has no attribute")


def stdlib_shadow(reason: str, folders) -> str:
    """A hint when ``reason`` names a module of ``folders`` (a project's) that has the name of
    one of Python's own: whether Python's or the project's is imported depends on which is
    imported first (Keras 3 imports ``profile`` through ``cProfile``; a forked worker has
    Python's already), so the two fail differently; the cause is the name."""
    named = {g for groups in _IMPORT_SHAPED.findall(reason) for g in groups if g}   # not 'code' in a ValueError
    for place in dict.fromkeys(f for f in folders if f and os.path.isdir(f)):
        for entry in sorted(os.listdir(place)):
            name = entry[:-3] if entry.endswith(".py") else entry
            if (name in sys.stdlib_module_names and name in named
                    and (entry.endswith(".py") or os.path.isfile(os.path.join(place, entry, "__init__.py")))):
                return (f"; the project's {os.path.join(place, entry)} has the name of Python's own module "
                        f"{name!r}, and one was imported where the other was meant: rename it")
    return ""


def plugin_folders(plugins) -> list[str]:
    """The folders a cell's references import from (``kind=reference`` strings): each file's
    own and each reference's import folder."""
    folders = []
    for entry in plugins:
        body, folder = split_folder(entry.partition("=")[2])
        target = body.rpartition(":")[0]
        folders += [os.path.dirname(os.path.abspath(target))] if target.endswith(".py") else []
        folders += [folder] if folder else []
    return folders


class _HardExit(SystemExit):
    """``os._exit`` called by a module while distbench imported it."""


@contextlib.contextmanager
def _hard_exits_refused():
    """While a user's module is imported, ``os._exit`` raises: a training script that ends in
    ``os._exit(0)`` (a way round TensorFlow's hangs at exit) ended the command, with no
    output and status 0, which a CI gate reads as a pass."""
    def refused(code):
        raise _HardExit(code)

    real, os._exit = os._exit, refused
    try:
        yield
    finally:
        os._exit = real


def _one_line(exc: BaseException) -> str:
    """``SyntaxError: invalid syntax (model.py, line 3)``: the error and where, on one line."""
    if isinstance(exc, _HardExit):
        return (f"it called os._exit({exc.code!r}) while imported: a script's ending at module level; put it "
                "under `if __name__ == \"__main__\":`")
    if isinstance(exc, SystemExit):
        return (f"it exited while imported (SystemExit({exc.code!r})): a script's `sys.exit(main())` or "
                "`parse_args()` at module level; put it under `if __name__ == \"__main__\":`")
    where = f" ({exc.filename}, line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.filename else ""
    text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return f"{type(exc).__name__}: {' '.join(str(text).split())}{where}"


def same_class(a: type, b: type) -> bool:
    """The same class, or the same class loaded again (same module file and qualified name)."""
    if a is b:
        return True
    file_a = getattr(sys.modules.get(a.__module__), "__file__", None)
    file_b = getattr(sys.modules.get(b.__module__), "__file__", None)
    return a.__qualname__ == b.__qualname__ and file_a is not None and file_a == file_b
