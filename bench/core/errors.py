"""The project's user-facing error type.

The CLI catches :class:`UserError` in exactly one place and turns it into one line on
stderr and a non-zero exit; anything else is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """Bad input from the user: says what was received and what is valid."""


class Unresolved(UserError):
    """A workload, strategy, loop or plugin a selection names that cannot be had (``kind``,
    ``name`` as the selection gave it): the front ends name the matrix file when it came
    from there (:func:`distbench.session.matrix_file.where`)."""

    def __init__(self, message: str, kind: str, name: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name


class UnknownName(Unresolved):
    """A name no registry holds."""


class BadReference(Unresolved):
    """A reference (``module:Class``, ``file.py:Class``) that does not load, or names no
    class of its kind."""
