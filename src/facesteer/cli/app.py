"""The ``facesteer`` command line: the app every command module adds its commands to, and ``main``, which
turns user mistakes (bad arguments, missing files, wrong shapes) into one line on stderr and exit status 2.

The library's errors name its parameters in backticks (```learning_rate``` must be ...); ``main`` shows each as
the flag of the command that ran (``--lr``), so one message serves the Python API and the command line."""

from __future__ import annotations

import re
import sys
from typing import Any

import typer
from rich.console import Console

from facesteer.errors import FacesteerError

app = typer.Typer(
    name="facesteer",
    help="Semantic face editing in the latent space of GANs.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


def _is_click_error(error: BaseException, name: str) -> bool:
    # Typer raises click's exceptions (vendored in recent releases); match them by class name.
    return any(cls.__name__ == name for cls in type(error).__mro__)


def command_flags(command: Any, argv: list[str]) -> dict[str, str]:
    """The flags of the (sub)command ``argv`` runs, by parameter name: ``learning_rate`` -> ``--lr``."""
    args = list(argv)
    while hasattr(command, "commands") and args and args[0] in command.commands:
        command = command.commands[args.pop(0)]
    return {param.name: max(param.opts, key=len) for param in command.params
            if param.name and param.opts and param.opts[0].startswith("-")}  # fmt: skip


def as_flags(message: str, flags: dict[str, str]) -> str:
    """``message`` with each backticked parameter name that is one of ``flags`` shown as its flag."""
    return re.sub(r"`(\w+)`", lambda match: flags.get(match.group(1), match.group(0)), message)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line on stderr and exit status 2."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="facesteer", standalone_mode=False)
    except FacesteerError as error:
        flags = command_flags(command, sys.argv[1:] if argv is None else argv)
        sys.stderr.write(f"facesteer: error: {as_flags(str(error), flags)}\n")
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("facesteer: interrupted\n")
        sys.exit(130)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except Exception as error:
        if _is_click_error(error, "NoArgsIsHelpError"):
            sys.stdout.write(error.ctx.get_help() + "\n")  # type: ignore[attr-defined]
            return
        if _is_click_error(error, "UsageError"):
            sys.stderr.write(f"facesteer: error: {error.format_message()}\n")  # type: ignore[attr-defined]
            sys.exit(2)
        if _is_click_error(error, "Abort"):
            sys.stderr.write("facesteer: interrupted\n")
            sys.exit(130)
        raise
    if isinstance(result, int) and result:
        sys.exit(result)
