"""The click group of ``comem``: commands load from their modules
(:data:`comem.cli.COMMANDS`) on first use; :func:`dispatch` turns every input
problem into one line."""
from __future__ import annotations

import os
import sys

import click

from comem import __version__
from comem.cli import COMMANDS
from comem.cli.output import fail
from comem.errors import ComemError


class ModelGroup(click.Group):
    """A group whose first argument may be a model instead of a command, and
    whose commands are loaded from their modules on first use."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        import importlib

        module, attr = COMMANDS[name]
        return getattr(importlib.import_module(f"comem.cli.{module}"), attr)

    def parse_args(self, ctx, args):
        if args and args[0] not in COMMANDS and not args[0].startswith("-"):
            args = ["analyze"] + list(args)
        return super().parse_args(ctx, args)

    def format_usage(self, ctx, formatter):
        formatter.write_usage("comem", "MODEL [OPTIONS]  |  comem COMMAND [ARGS]...")


# -- commands ------------------------------------------------------------------

@click.group(cls=ModelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="comem")
def main():
    """Analytic memory and FLOP calculator for continual 3D CNNs.

    \b
    comem x3d-m --clip 64            Appendix-A-style breakdown and totals
    comem path/to/spec.toml          analyse your own architecture
    comem list                       the known models
    """


def dispatch(args: list):
    """Run the CLI on ``args``, turning every input problem into one line."""
    if not args:  # bare `comem`: its help, as people expect
        with click.Context(main, info_name="comem") as ctx:
            click.echo(main.get_help(ctx))
        sys.exit(0)
    try:
        main.main(args=args, prog_name="comem", standalone_mode=False)
    except ComemError as exc:
        fail(exc.cli_message(), exc.exit_code)
    except click.exceptions.NoSuchOption as exc:
        hint = f" (did you mean {', '.join(exc.possibilities)}?)" if exc.possibilities else ""
        fail(f"no such option {exc.option_name}{hint}; see 'comem --help'")
    except click.exceptions.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx else "comem"
        fail(f"{exc.format_message()}; see '{cmd} --help'")
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        sys.exit(0)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except RecursionError:
        fail("the spec nests too deeply to analyse", 2)
    except Exception as exc:  # a bug, not bad input: still one line, but say so
        if os.environ.get("COMEM_DEBUG"):
            raise
        fail(f"internal error ({type(exc).__name__}: {exc}); please report it with the command you ran "
              "(set COMEM_DEBUG=1 for a traceback)", 1)
