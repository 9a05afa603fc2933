"""Versioned SQL migrations (yoyo, files in the top-level `migrations/` folder).

Two processes may start at once (several API processes, `make run` while tests run):
a PostgreSQL advisory lock serialises them, so the second one waits, then finds
nothing left to apply instead of failing on yoyo's lock table.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import structlog

from casebook.database import Database
from casebook.errors import first_line

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any fixed 64-bit number shared by every casebook process; spells "casebook" in ASCII.
_ADVISORY_LOCK_KEY = int.from_bytes(b"casebook", "big") - 2**63
_LOCK_TIMEOUT = "60s"  # a migration holding the lock longer than this is stuck, not slow


class MigrationFailed(RuntimeError):
    """A migration could not be applied; the message names it and the database's reason."""


def apply_migrations(db: Database, migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration in order; return their ids (empty when up to date)."""
    from yoyo import read_migrations
    from yoyo.exceptions import LockTimeout

    migrations = read_migrations(str(migrations_dir))
    with _advisory_lock(db):
        backend = _yoyo_backend(db)
        try:
            # yoyo's own lock row as well, so its command-line tool sees us; under the
            # advisory lock only a row left behind by a killed process makes this wait.
            with backend.lock():
                return [_apply(backend, m, db) for m in backend.to_apply(migrations)]
        except LockTimeout as error:
            raise MigrationFailed(f"{db.describe()}: {error}") from None
        finally:
            backend.connection.close()


def pending_migrations(db: Database, migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Ids of migrations not yet applied to `db`."""
    from yoyo import read_migrations

    backend = _yoyo_backend(db)
    try:
        return [m.id for m in backend.to_apply(read_migrations(str(migrations_dir)))]
    finally:
        backend.connection.close()


@contextmanager
def _advisory_lock(db: Database) -> Iterator[None]:
    """Hold a session-level advisory lock on a connection of its own while the block runs."""
    try:
        conn = psycopg.connect(db.url, autocommit=True)
    except psycopg.Error as error:
        raise MigrationFailed(f"cannot connect to {db.describe()}: {first_line(error)}") from None
    with conn:  # closing the session releases the lock, whatever happened in the block
        try:
            conn.execute(f"SET lock_timeout = '{_LOCK_TIMEOUT}'")
            conn.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        except psycopg.Error as error:
            raise MigrationFailed(f"cannot lock {db.describe()}: {first_line(error)}") from None
        yield


def _apply(backend: Any, migration: Any, db: Database) -> str:
    started = time.perf_counter()
    try:
        backend.apply_one(migration)
    except psycopg.Error as error:
        raise MigrationFailed(f"migration {migration.id} failed: {first_line(error)}") from None
    log.info(
        "database.migration.applied",
        migration=migration.id,
        database=db.describe(),
        elapsed_ms=round((time.perf_counter() - started) * 1000),
    )
    return str(migration.id)


def _yoyo_backend(db: Database) -> Any:
    """A yoyo backend built from the parts, so a socket-directory host needs no URL tricks."""
    from yoyo.backends.base import get_backend_class
    from yoyo.connections import DatabaseURI
    from yoyo.migrations import default_migration_table

    uri = DatabaseURI(
        scheme="postgresql+psycopg",
        username=db.user,
        password=db.password,
        hostname=db.host,  # yoyo passes it to psycopg.connect(host=...) as is
        port=db.port,
        database=db.dbname,
        args=dict(db.params),
    )
    try:
        backend = get_backend_class(uri.scheme)(uri, default_migration_table)
        backend.init_database()
    except psycopg.Error as error:
        raise MigrationFailed(f"cannot migrate {db.describe()}: {first_line(error)}") from None
    return backend
