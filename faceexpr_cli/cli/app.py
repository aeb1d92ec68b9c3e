"""The `fx` entry point: builds the Typer app from the command modules and applies the one error table."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from faceexpr_cli import __version__
from faceexpr_cli.console import err, setup_logging
from faceexpr_cli.errors import FxError
from faceexpr_cli.registry import import_submodules

HELP_NAMES = ["-h", "--help"]

app = typer.Typer(
    name="fx",
    help="faceexpr: from raw talking-face video to clean face clips, expression models and ONNX.\n\n"
    "Examples: [cyan]fx doctor[/], [cyan]fx demo --out demo-out[/], [cyan]fx models list[/]",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": HELP_NAMES},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fx {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (-vv for debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors, no progress bars.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    setup_logging(-1 if quiet else verbose)


def _register_commands() -> None:
    import importlib

    for name in import_submodules("faceexpr_cli.cli.commands"):
        module = importlib.import_module(f"faceexpr_cli.cli.commands.{name}")
        module.register(app)


def _flags_without_metavar(command, names: list[str]) -> None:
    """Boolean flags take no value, but Typer's rich help prints ``<bool>`` after them as if they did: an empty
    metavar for every flag (``--x/--no-x`` and ``--help`` included; counters such as ``-v`` keep ``<int>``)."""
    help_option = command.get_help_option(typer.Context(command, help_option_names=names))
    for param in [*command.params, *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _flags_without_metavar(sub, names)


def cli():
    """The Click command Typer builds from ``app`` (``typer.main.get_command``), with flags shown without a
    metavar; ``main`` runs it, and tests can parse with it."""
    command = typer.main.get_command(app)
    _flags_without_metavar(command, HELP_NAMES)
    return command


_register_commands()


def report_error(exc: FxError) -> int:
    from rich.markup import escape

    if exc.exit_code == 130:  # an interrupt is not an error of the user's or of fx's: no "error:" prefix
        err.print(escape(exc.one_line()), highlight=False, soft_wrap=True)
    else:
        err.print(f"[bold red]error:[/] {escape(exc.one_line())}", highlight=False, soft_wrap=True)
    return exc.exit_code


def main(argv: list[str] | None = None) -> int:
    """Run fx; returns the exit code. Typed errors become one line on stderr (``FX_DEBUG=1``: the traceback)."""
    setup_logging(0)
    try:
        cli()(args=argv, prog_name="fx")
    except SystemExit as exc:
        code = exc.code
        if code == 130:  # Typer turns a KeyboardInterrupt that no command handled into Exit(130), silently
            err.print("interrupted")
        return code if isinstance(code, int) else (0 if code is None else 1)
    except FxError as exc:
        if os.environ.get("FX_DEBUG"):
            raise
        return report_error(exc)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0


def run() -> None:
    """The `fx` executable: ``main()``, then exit with its code. After Ctrl-C (130) the process ends at once
    (``os._exit``, streams flushed): the run has already closed its files, and interpreter teardown after an
    interrupt sometimes ended the process by SIGINT itself (status -2 instead of 130), seen in about one run in
    eight of `fx clip` interrupted early."""
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    run()
