"""`casebook policy ...`: check and show the support policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from casebook.policy_source import load_policy
from casebook.settings import get_settings

policy_app = typer.Typer(help="Check and show the support policy.", no_args_is_help=True)


@policy_app.command("check")
def check(
    file: Annotated[
        Path | None, typer.Argument(help="Policy TOML file (default: the configured one).")
    ] = None,
) -> None:
    """Validate a policy file; print its version, or one line naming the bad field."""
    policy = load_policy(file or get_settings().policy_file)
    typer.echo(f"policy {policy.version}: ok")
