"""`casebook migrate`, and the database every command that needs one opens."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import typer

from casebook.database import Database, StoppedWaiting, open_database
from casebook.settings import Settings, get_settings
from entrypoints.logging import configure_logging
from entrypoints.migrate import apply_migrations

if TYPE_CHECKING:  # loaded by the commands that write, not by every command
    from casebook.application import Casebook


@contextmanager
def command_database(
    settings: Settings,
    *,
    migrate: bool | None = None,
    waiting: threading.Event | None = None,
) -> Iterator[Database]:
    """Open the configured database; migrate it when asked (default: only when embedded).

    An external database is migrated on purpose, by `casebook migrate` in a deploy step;
    the embedded one belongs to this machine, so commands keep it current themselves.
    Long-running commands pass their stop event as `waiting`: a database that is down
    is waited for (up to `outage_limit_seconds`), and Ctrl-C meanwhile ends the command.
    """
    with ExitStack() as opened:
        try:
            db = opened.enter_context(open_database(settings, waiting=waiting))
        except StoppedWaiting:
            raise typer.Exit(0) from None
        if migrate if migrate is not None else db.embedded:
            apply_migrations(db)
        yield db


@contextmanager
def command_casebook(db: Database, settings: Settings) -> Iterator[Casebook]:
    """The write side on `db` for one command (the event store, its keys); closed after."""
    from casebook.application import Casebook

    casebook = Casebook.connect(db, settings)
    try:
        yield casebook
    finally:
        casebook.close()


def migrate_command() -> None:
    """Apply pending database migrations; print their ids, or that nothing was pending."""
    settings = get_settings()
    configure_logging(settings, stream="stderr")
    with open_database(settings) as db:
        applied = apply_migrations(db)
    if not applied:
        typer.echo("nothing to apply")
    for migration_id in applied:
        typer.echo(f"applied {migration_id}")
    print(f"database {db.describe()} is up to date", file=sys.stderr)
