"""The `casebook` command line. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import sys

import typer

from casebook.cli.policy import policy_app
from casebook.cli.sla import sla_app
from domain.errors import DomainError

app = typer.Typer(
    name="casebook",
    help="Event-sourced case management for the support desk.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(sla_app, name="sla")
app.add_typer(policy_app, name="policy")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; usage and rule errors become one line and exit codes 2 and 1."""
    try:
        result = app(args=argv, standalone_mode=False, prog_name="casebook")
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        print("casebook: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as error:
        message = error.format_message().replace("Value error, ", "")
        if message:  # empty after `casebook` alone printed its help
            print(f"casebook: error: {message}", file=sys.stderr)
        return error.exit_code
    except DomainError as error:
        print(f"casebook: error: {error}", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
