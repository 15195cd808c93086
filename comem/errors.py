"""The one exception type users see.

Every problem with user input (model name, spec file, sizes, options) is
raised as :class:`ComemError` with a one-line message that names what is wrong
and how to fix it.  The CLI prints it to stderr and exits with status 2.
"""


#: marks an input named in a message (see :func:`arg`)
_MARK = "\ue000"  # a private-use character: never whitespace, never in a message


def arg(python: str, cli: str | None = None) -> str:
    """An input named in an error message, in the caller's own terms: the
    Python argument (``size``) where a Python caller reads the message, the
    command-line option (``--size``, or ``cli``) where the CLI prints it."""
    return f"{_MARK}{python}{_MARK}{cli or '--' + python.replace('_', '-')}{_MARK}"


def _render(message: str, cli: bool) -> str:
    parts = message.split(_MARK)
    # [text, python, cli, text, python, cli, ..., text]
    return "".join(p if i % 3 == 0 else (p if (i % 3 == 2) == cli else "") for i, p in enumerate(parts))


class ComemError(Exception):
    """A user-facing error: one line, says what is wrong and how to fix it.
    ``str(error)`` names inputs as a Python caller gives them (``size``);
    :meth:`cli_message` as the command line does (``--size``)."""

    exit_code = 2

    def __init__(self, message: str):
        self.raw = " ".join(str(message).split())  # always one line
        super().__init__(_render(self.raw, cli=False))

    def cli_message(self) -> str:
        return _render(self.raw, cli=True)

    def __format__(self, spec):
        # an error quoted in another's message (f"...: {exc}") keeps its inputs in both terms
        return self.raw if not spec else format(str(self), spec)


class MissingExtraError(ComemError):
    """An optional dependency (torch, sympy, numpy, matplotlib…) is needed."""


def suggest(name: str, options) -> str:
    """`` (did you mean 'x3d-m'?)`` for a misspelled name, or ``""``."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(o) for o in options], n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
