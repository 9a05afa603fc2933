"""`casebook notifications list`: the messages the embedded notifier kept instead of sending.

With `CASEBOOK_NOTIFIER=table` (the default) a one-time caller verification code is not
sent anywhere: it waits in `casebook_notifications`, and whoever stands in for the
customer's mailbox reads it here. The message is printed whole, code included: it is
the message that would have gone out.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import psycopg
import typer

from casebook.settings import get_settings
from entrypoints.cli.db import command_database
from entrypoints.logging import configure_logging
from messaging.notifications import sent_notifications

notifications_app = typer.Typer(
    help="Messages to people (caller verification codes) kept by the embedded notifier.",
    no_args_is_help=True,
)


@notifications_app.command("list")
def list_notifications(
    organisation: Annotated[
        UUID | None, typer.Option(help="Only this organisation's messages.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Newest this many.")] = 20,
) -> None:
    """Newest first: when, organisation, kind, recipient, subject, then the message."""
    settings = get_settings()
    configure_logging(settings, stream="stderr")
    with command_database(settings) as db, psycopg.connect(db.url) as conn:
        found = sent_notifications(conn, organisation_id=organisation, limit=limit)
    for sent in found:
        when = sent.created_at.isoformat(timespec="seconds")
        typer.echo(f"{when}  {sent.organisation_id}  {sent.kind}  {sent.recipient}")
        typer.echo(f"  {sent.subject}")
        typer.echo(f"  {sent.message}")
    if not found:
        typer.echo("no notifications", err=True)
