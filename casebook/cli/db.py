"""`casebook migrate`, and the database every command that needs one opens."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from casebook.database import Database, open_database
from casebook.logging import configure_logging
from casebook.migrate import apply_migrations
from casebook.settings import Settings, get_settings


@contextmanager
def command_database(settings: Settings, *, migrate: bool | None = None) -> Iterator[Database]:
    """Open the configured database; migrate it when asked (default: only when embedded).

    An external database is migrated on purpose, by `casebook migrate` in a deploy step;
    the embedded one belongs to this machine, so commands keep it current themselves.
    """
    with open_database(settings) as db:
        if migrate if migrate is not None else db.embedded:
            apply_migrations(db)
        yield db


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
