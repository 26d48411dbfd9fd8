"""The `locseg` command line: a thin Typer shell over the core library.

Heavy libraries (torch, monai) are imported inside the commands, so `locseg --help` is instant.
A user mistake (`LocsegError`, a bad option) prints one red line and exits 2; `--debug` anywhere
on the command line shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

import typer

from . import __version__
from .commands import REGISTERED
from .registry import load_modules

app = typer.Typer(name="locseg", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Location-aware 3D patch-based CT segmentation: synth, preprocess, train, infer, "
                       "evaluate, and the LocBAM paper's experiments.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"locseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """locseg: location-aware 3D patch-based CT segmentation (LocBAM, CoordConv).

    Add --debug anywhere to see tracebacks.
    """


for (_name, _), _mod in zip(REGISTERED, load_modules([f"locseg_cli.commands.{m}" for _, m in REGISTERED])):
    _mod.register(app, _name)


def main(argv: list[str] | None = None) -> None:
    """Console entry point with the one-line error convention."""
    from .console import error_line
    from .errors import LocsegError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("LOCSEG_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    try:
        rv = app(args=args, prog_name="locseg", standalone_mode=False)
        sys.exit(rv if isinstance(rv, int) else 0)
    except LocsegError as exc:
        if debug:
            raise
        error_line(str(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        error_line("interrupted; rerun the same command to resume")
        sys.exit(130)
    except Exception as exc:  # Typer's (vendored) click exceptions, matched by shape, not by import
        kind = type(exc).__name__
        if kind == "Exit" and hasattr(exc, "exit_code"):
            sys.exit(exc.exit_code)
        if kind == "Abort":
            error_line("aborted")
            sys.exit(130)
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code") and not debug:
            ctx = getattr(exc, "ctx", None)
            where = f"{ctx.command_path}: " if ctx is not None else ""
            error_line(f"{where}{exc.format_message()}")
            sys.exit(2)
        raise
