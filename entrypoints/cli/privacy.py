"""`casebook privacy erase|export`: erasure and access requests for personal data.

They run on the event store directly, like `casebook serve`'s write side: a running
system's writer sees the erasure's events as writes of another process.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer

from casebook.application import Casebook
from casebook.personal_data import Erasure, ErasureCutShort, erase, export
from casebook.settings import get_settings
from domain.values import Actor, Channel, Role
from entrypoints.cli.db import command_casebook, command_database
from entrypoints.logging import configure_logging

privacy_app = typer.Typer(
    help="Erase personal data (crypto-shredding) or export a data subject's.",
    no_args_is_help=True,
)


@privacy_app.command("erase")
def erase_command(
    reason: Annotated[
        str,
        typer.Option(
            help="The request honoured (a ticket, a letter): kept in clear in the audit "
            "trail, so no personal data."
        ),
    ],
    organisation: Annotated[
        UUID | None,
        typer.Option(help="Erase this organisation's personal data (all of its subjects)."),
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(help="Erase this data subject's (a requester's principal id)."),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(help="Who erases (recorded as the actor); default: operator:<user>."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Destroy the data keys of an organisation's or a subject's personal data, for good:
    every read shows those fields as erased from then on, and each case reached records
    who erased it, when and why. Running it again completes an erasure cut short."""
    if organisation is None and subject is None:
        raise typer.BadParameter("give --organisation, --subject or both")
    actor = Actor(by or f"operator:{getpass.getuser()}", Role.ADMIN, Channel.API)
    with _casebook() as casebook:
        try:
            report = erase(
                casebook,
                Erasure(organisation, subject, reason),
                actor,
                progress=lambda done, of: print(f"recorded {done} of {of} ...", file=sys.stderr),
            )
        except ErasureCutShort as error:
            typer.echo(f"casebook: error: {error}", err=True)
            interrupted = isinstance(error.__cause__, KeyboardInterrupt)
            raise typer.Exit(130 if interrupted else 1) from None
    if as_json:
        typer.echo(json.dumps(asdict(report)))
        return
    typer.echo(
        f"erasure {report.erasure_id}: {report.keys_destroyed} data key(s) destroyed, "
        f"{report.cases} case(s) reached, {report.recorded} erasure event(s) recorded"
    )


@privacy_app.command("export")
def export_command(
    subject: Annotated[str, typer.Option(help="The data subject (a requester's principal id).")],
    out: Annotated[
        Path | None, typer.Option(help="Write the JSON here instead of standard output.")
    ] = None,
) -> None:
    """Every personal field kept of a data subject's cases, event by event, as JSON (an
    access request); erased fields read as erased."""
    with _casebook() as casebook:
        data = export(casebook, subject)
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"{len(data['cases'])} case(s) of {subject} written to {out}", err=True)


@contextmanager
def _casebook() -> Iterator[Casebook]:
    settings = get_settings()
    configure_logging(settings, stream="stderr")
    with command_database(settings) as db, command_casebook(db, settings) as casebook:
        yield casebook
