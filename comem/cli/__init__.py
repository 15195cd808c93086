"""The ``comem`` command line: a thin layer over :mod:`comem.api`.

One module per command family (``COMMANDS`` below maps each command to its
module, imported only when the command runs); the option types and option
groups all commands share are in :mod:`comem.cli.options`, printing and the
one-line errors in :mod:`comem.cli.output`.  This package's own module
imports no click: the group lives in :mod:`comem.cli.group`, and a repeated
analysis is answered from :mod:`comem.cli.cache` before anything heavy loads.

``comem MODEL [options]`` analyses a model (a built-in name or a spec file);
the other commands are listed by ``comem --help``.  Every problem with the
input is reported as one line on stderr with exit status 2.

Options are validated by click types that call comem's own checks, so their
choices show in ``--help`` and shell completion, and a bad value gets
comem's message (with suggestions).
"""
from __future__ import annotations

import sys

#: command -> (module under comem.cli, function); the module is imported when the command runs
COMMANDS = {
    "analyze": ("analyze", "analyze_cmd"),
    "import": ("import_model", "import_cmd"),
    "list": ("catalog", "list_cmd"),
    "profiles": ("catalog", "profiles_cmd"),
    "kinds": ("catalog", "kinds_cmd"),
    "validate": ("validate", "validate_cmd"),
    "state": ("state", "state_cmd"),
    "paper": ("paper", "paper_cmd"),
    "predict": ("device", "predict_cmd"),
    "bench": ("device", "bench_cmd"),
    "calibrate": ("device", "calibrate_cmd"),
    "formula": ("formula", "formula_cmd"),
    "sweep": ("grid", "sweep_cmd"),
    "pareto": ("grid", "pareto_cmd"),
    "solve": ("grid", "solve_cmd"),
    "compare": ("compare", "compare_cmd"),
    "plot": ("plot", "plot_cmd"),
}


def run(argv=None):
    """Entry point: answer a repeated analysis from the output cache, else run
    the CLI (every input problem as one line, exit status 2)."""
    from comem.cli import cache

    args = sys.argv[1:] if argv is None else list(argv)
    if cache.replay(args):
        sys.exit(0)
    from comem.cli.group import dispatch

    with cache.recording(args):
        dispatch(args)


def __getattr__(name):
    if name == "main":  # the click group, for click's testing tools
        from comem.cli.group import main

        return main
    raise AttributeError(f"module 'comem.cli' has no attribute {name!r}")


if __name__ == "__main__":  # pragma: no cover
    run()
