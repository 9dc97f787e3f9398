"""An explicit registry (of workloads, strategy adapters or loops), filled by a decorator.

Nothing is discovered by scanning subclasses: a built-in exists once its module is
imported by its package's ``__init__`` and registered under its name. Installed packages
add theirs through the registry's entry-point group (``distbench.workloads`` ...), which
the registry reads itself the first time it is asked for a name. A class from outside is
checked against the registry's protocol (its base class and the attributes it needs)
before it is registered (:meth:`Registry.add`).
"""

from __future__ import annotations

import importlib.metadata
import logging
import sys
from typing import TypeVar

from distbench.core.errors import UnknownName, UserError
from distbench.core.references import is_reference, same_class

T = TypeVar("T")
log = logging.getLogger(__name__)


class Registry:
    """A name -> class mapping that refuses duplicates and explains unknown names.

    Args:
        kind: what it holds, as messages name it (``workload``).
        group: the entry-point group installed packages register in (None: none).
        needs: the attributes a class from outside must have.
        base: the class a class from outside must subclass (None: any class).
    """

    def __init__(self, kind: str, group: str | None = None, needs: tuple[str, ...] = ("name",),
                 base: type | None = None, how: str = "") -> None:
        self.kind = kind
        self.group = group
        self.needs = needs
        self.base = base
        self.how = how   # how a user's class implements the protocol, for the refusal
        self._entries: dict[str, type] = {}
        self._discovered = group is None

    def _discover(self) -> None:
        """Registers every installed package's classes of the group. One that fails to load
        is skipped with a warning naming it: one broken package must not stop the others."""
        if self._discovered:
            return
        self._discovered = True
        for ep in importlib.metadata.entry_points(group=self.group):
            where = f"entry point {ep.name} = {ep.value}"
            try:
                self.add(ep.load(), where)
            except Exception as exc:  # noqa: BLE001 - reported, and the rest still load
                log.warning("skipped the %s plugin %s = %s: %s", self.kind, ep.name, ep.value, exc)

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: registers ``cls`` under ``cls.name``."""
        name = cls.name
        if name in self._entries:
            raise ValueError(
                f"Duplicate {self.kind} name {name!r}: already registered by "
                f"{self._entries[name].__qualname__}."
            )
        self._entries[name] = cls
        return cls

    def add(self, cls, where: str) -> str:
        """Checks ``cls`` (from ``where``, a reference or entry point) against the protocol
        and registers it; the same class again is a no-op, another class of a taken name a
        UserError naming both. Returns its name."""
        self.check(cls, where)
        name = cls.name
        if name in self._entries:
            known = self._entries[name]
            if same_class(known, cls):
                return name
            raise UserError(f"{where}: {self.kind} name {name!r} is taken by {_origin(known)}; "
                            "give the class another `name`.")
        self.register(cls)
        return name

    def check(self, cls, where: str) -> None:
        """The class implements this registry's protocol (UserError saying what it lacks)."""
        if not isinstance(cls, type):
            raise UserError(f"{where}: expected a {self.kind} class, got {type(cls).__name__}.")
        if self.base is not None and not issubclass(cls, self.base):
            raise UserError(f"{where}: a {self.kind} must subclass {self.base.__module__}.{self.base.__qualname__}.")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name or is_reference(name) or "-" in name:
            raise UserError(f"{where}: a {self.kind} class needs a `name` (a string without ':' or '-'); "
                            f"{cls.__qualname__!r} has {name!r}.")
        missing = [m for m in self.needs if not hasattr(cls, m)]
        abstract = sorted(getattr(cls, "__abstractmethods__", ()))
        if missing and self.how:   # not built on the base class: how to be one, not the base's internals
            raise UserError(f"{where}: {cls.__qualname__} is not a {self.kind}: {self.how} (see docs/own-model.md).")
        if missing or abstract:
            raise UserError(f"{where}: {cls.__qualname__} does not implement the {self.kind} protocol: missing "
                            f"{', '.join(missing + abstract)} (see docs/own-model.md).")

    def unregister(self, name: str) -> type:
        """Removes and returns the class registered as ``name`` (pluggy's ``unregister``)."""
        self.get(name)
        return self._entries.pop(name)

    def get(self, name: str) -> type:
        """Returns the class registered as ``name``, or raises a UserError listing valid names."""
        self._discover()
        try:
            return self._entries[name]
        except KeyError:
            raise self.unknown(name) from None

    def unknown(self, name: str, also: tuple[str, ...] = ()) -> UserError:
        """The refusal of a name this registry does not hold, listing the valid names (and
        ``also``, names known elsewhere: a matrix file's own classes)."""
        known = dict.fromkeys([*self.names(), *also])
        return UnknownName(f"Unknown {self.kind} {name!r}. Known: {', '.join(known)}; "
                           "or a reference, module:Class or path/to/file.py:Class.", self.kind, name)

    def names(self) -> list[str]:
        self._discover()
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries


def _origin(cls) -> str:
    """Where a class comes from, as the user named it: ``path/model.py:Points`` for a class
    loaded from a file (its module's name is one distbench made up), else ``module.Class``."""
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if cls.__module__.startswith("distbench_user_") and path:
        return f"{path}:{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"
