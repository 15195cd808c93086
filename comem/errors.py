"""The one exception type users see.

Every problem with user input (model name, spec file, sizes, options) is
raised as :class:`ComemError` with a one-line message that names what is wrong
and how to fix it.  The CLI prints it to stderr and exits with status 2.
"""


class ComemError(Exception):
    """A user-facing error: one line, says what is wrong and how to fix it."""

    exit_code = 2

    def __init__(self, message: str):
        message = " ".join(str(message).split())  # always one line
        super().__init__(message)


class MissingExtraError(ComemError):
    """An optional dependency (torch, sympy, numpy, matplotlib…) is needed."""


def suggest(name: str, options) -> str:
    """`` (did you mean 'x3d-m'?)`` for a misspelled name, or ``""``."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(o) for o in options], n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
