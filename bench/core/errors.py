"""The project's user-facing error type.

The CLI catches :class:`UserError` in exactly one place and turns it into one line on
stderr and a non-zero exit; anything else is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """Bad input from the user: says what was received and what is valid."""
