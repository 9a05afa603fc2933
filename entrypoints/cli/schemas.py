"""`casebook schemas ...`: the event JSON Schemas and AsyncAPI document under schemas/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from entrypoints.schemas import drift, write_schemas

schemas_app = typer.Typer(
    help="JSON Schemas of the published events and the AsyncAPI document.",
    no_args_is_help=True,
)

Directory = Annotated[Path, typer.Option("--dir", help="The schemas directory.")]


@schemas_app.command("write")
def write_command(directory: Directory = Path("schemas")) -> None:
    """Generate the schema files from the event classes."""
    written = write_schemas(directory)
    typer.echo(f"wrote {len(written)} files under {directory}")


@schemas_app.command("check")
def check_command(directory: Directory = Path("schemas")) -> None:
    """Exit 1, naming the first drifted file, when the files differ from the code."""
    found = drift(directory)
    if found:
        relative, problem = next(iter(found.items()))
        typer.echo(
            f"casebook: error: {directory / relative} {problem} (run `casebook schemas write`)",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"{directory} matches the code")
