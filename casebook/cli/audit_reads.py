"""`casebook audit` commands: timeline, state as of, diff, verify, access records."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to `casebook audit`."""
