"""The project's user-facing error type.

The CLI catches :class:`UserError` in exactly one place and turns it into one line on
stderr and a non-zero exit; anything else is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """Bad input from the user: says what was received and what is valid."""


class UnknownName(UserError):
    """A workload, strategy or loop name no registry holds (``kind``, ``name``): the CLI
    names the matrix file when the name came from there."""

    def __init__(self, message: str, kind: str, name: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
