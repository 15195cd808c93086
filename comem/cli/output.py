"""How commands print: one-line errors, colour marks, progress on a terminal."""
from __future__ import annotations

import os
import sys

import click


def fail(msg: str, code: int = 2):
    msg = " ".join(str(msg).split())
    click.echo(f"comem: error: {msg}", err=True)
    sys.exit(code)


def color_enabled() -> bool | None:
    """False under NO_COLOR; otherwise click decides (colour on a terminal only)."""
    return False if os.environ.get("NO_COLOR") else None


_MARKS = {"✓": "green", "✗": "red", "⚠": "yellow", "FAIL": "red", "PASS": "green"}


def emit(text: str, fmt: str = "table"):
    """Print a command's output; ✓ ✗ ⚠ in colour on a terminal (not under
    NO_COLOR, never in machine formats)."""
    if fmt == "table" and color_enabled() is not False:
        for mark, colour in _MARKS.items():
            text = text.replace(mark, click.style(mark, fg=colour, bold=mark != "⚠"))
    click.echo(text, color=color_enabled())


def progress(length: int, label: str):
    """A progress bar on stderr when it is a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        return _NoProgress()
    return click.progressbar(length=length, label=label, file=sys.stderr)


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n, current_item=None):
        return None
