"""`casebook audit` commands: evidence bundles and their offline verification."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to `casebook audit`."""
