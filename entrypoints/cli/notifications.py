"""`casebook notifications`: messages to people, kept, waiting or delivered.

`list` shows first the survey invitations the write side kept for the notifier part,
each marked delivered, pending (not tried yet) or failed (tried; when it is tried
again and why it failed); then the messages the embedded notifier
(`CASEBOOK_NOTIFIER=table`, the default) kept instead of sending: one-time caller
verification codes and delivered invitations. Messages are printed whole, codes
included: they are what would have gone out. `deliver` runs the notifier part alone.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import psycopg
import typer

from casebook.settings import get_settings
from entrypoints.cli.db import command_database
from entrypoints.logging import configure_logging
from messaging.delivery import OutboxMessage, outbox_messages
from messaging.notifications import sent_notifications

notifications_app = typer.Typer(
    help="Messages to people (caller verification codes, survey invitations): kept, waiting "
    "or delivered.",
    no_args_is_help=True,
)


@notifications_app.command("list")
def list_notifications(
    organisation: Annotated[
        UUID | None, typer.Option(help="Only this organisation's messages.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Newest this many.")] = 20,
) -> None:
    """Newest first: the notifier outbox with each message's state, then kept messages."""
    settings = get_settings()
    configure_logging(settings, stream="stderr")
    with command_database(settings) as db, psycopg.connect(db.url) as conn:
        outbox = outbox_messages(conn, organisation_id=organisation, limit=limit)
        found = sent_notifications(conn, organisation_id=organisation, limit=limit)
    if outbox:
        typer.echo("notifier outbox (survey invitations):")
    for message in outbox:
        typer.echo(_outbox_line(message))
        typer.echo(f"  {message.subject}")
    if found and outbox:  # headings only where two kinds of line need telling apart
        typer.echo("kept by the embedded notifier:")
    for sent in found:
        when = sent.created_at.isoformat(timespec="seconds")
        typer.echo(f"{when}  {sent.organisation_id}  {sent.kind}  {sent.recipient}")
        typer.echo(f"  {sent.subject}")
        typer.echo(f"  {sent.message}")
    if not found and not outbox:
        typer.echo("no notifications", err=True)


def _outbox_line(message: OutboxMessage) -> str:
    when = message.created_at.isoformat(timespec="seconds")
    head = f"{when}  {message.state:<9}  case {message.case_id}  {message.kind}"
    head += f"  {message.recipient}"
    if message.delivered_at is not None:
        return f"{head}  delivered {message.delivered_at.isoformat(timespec='seconds')}"
    if message.attempts:
        retry = message.next_attempt_at.isoformat(timespec="seconds")
        return f"{head}  {message.attempts} attempt(s), next {retry}: {message.last_error}"
    return head


@notifications_app.command("deliver")
def deliver_notifications() -> None:
    """Deliver the kept messages through the configured notifier until Ctrl-C or SIGTERM."""
    from entrypoints.background import run_standalone
    from entrypoints.cli.relay import stop_on_signals
    from entrypoints.notifier_service import NotifierService

    settings = get_settings()
    configure_logging(settings)
    with stop_on_signals() as stop, command_database(settings, waiting=stop) as db:
        service = NotifierService(db, settings)
        run_standalone("notifier", service.parts, stop, settings, db.url)
