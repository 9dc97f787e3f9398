"""An explicit registry (of workloads, strategy adapters or loops), filled by a decorator.

Nothing is discovered by scanning subclasses: a built-in exists once its module is
imported by its package's ``__init__`` and registered under its name. Installed packages
add theirs through entry points (``distbench.workloads`` ...), read the first time the
registry is asked for a name (:func:`bench.plugins.load_entry_points`).
"""

from __future__ import annotations

from typing import TypeVar

from bench.errors import UserError

T = TypeVar("T")


class Registry:
    """A name -> class mapping that refuses duplicates and explains unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, type] = {}
        self._discovered = False

    def _discover(self) -> None:
        if not self._discovered:
            self._discovered = True
            from bench import plugins

            plugins.load_entry_points(self.kind)

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
            raise UserError(
                f"Unknown {self.kind} {name!r}. Known: {', '.join(self.names())}; "
                "or a reference, module:Class or path/to/file.py:Class."
            ) from None

    def names(self) -> list[str]:
        self._discover()
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

