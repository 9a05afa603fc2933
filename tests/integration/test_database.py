"""Where PostgreSQL comes from: embedded under data_dir, or external by URL."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from casebook.database import (
    Database,
    DatabaseUnavailable,
    check_ready,
    ensure_database,
    open_database,
    parse_database_url,
)
from casebook.settings import Settings
from tests.integration.conftest import ON_BOTH_SERVERS, CliRunner

pytestmark = pytest.mark.integration

UNREACHABLE = "postgresql://casebook:s3cret-pw@127.0.0.1:1/casebook"


def test_embedded_database_keeps_its_rows_across_a_restart(data_home: Path) -> None:
    settings = Settings(database_url=None, data_dir=data_home / "var")
    with open_database(settings) as db:
        assert db.embedded and db.dbname == "casebook" and check_ready(db)
        with psycopg.connect(db.url) as conn:
            conn.execute("CREATE TABLE kept (note text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
    assert not check_ready(db), "the server stops when the block that started it ends"

    # A process killed without cleaning up leaves its pid among the server's users.
    handles = data_home / "var" / "pg" / ".handle_pids.json"
    handles.write_text(json.dumps([_dead_pid()]))

    with open_database(settings) as again, psycopg.connect(again.url) as conn:
        assert conn.execute("SELECT note FROM kept").fetchall() == [("still here",)]
    assert not check_ready(again), "a dead process's pid must not keep the server running"


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@ON_BOTH_SERVERS
def test_ready_check_answers_true_for_a_running_database(database: Database) -> None:
    assert check_ready(database)


@ON_BOTH_SERVERS
def test_creating_an_existing_database_again_changes_nothing(server: Database) -> None:
    name = f"casebook_test_{uuid.uuid4().hex[:12]}"  # parallel sessions share the server
    first = ensure_database(server, name)
    try:
        assert ensure_database(server, name) == first
        assert check_ready(first)
    finally:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_external_url_is_split_into_parts_and_rebuilt() -> None:
    db = parse_database_url("postgresql://app:p%40ss@db.internal:6543/cases?sslmode=require")
    assert (db.host, db.port, db.dbname, db.user, db.password) == (
        "db.internal",
        6543,
        "cases",
        "app",
        "p@ss",
    )
    assert not db.embedded
    assert conninfo_to_dict(db.url) == conninfo_to_dict(
        "host=db.internal port=6543 dbname=cases user=app password=p@ss sslmode=require"
    )


def test_socket_directory_hosts_survive_the_url_round_trip() -> None:
    db = parse_database_url("host=/run/postgresql port=5433 dbname=cases user=app")
    assert db.is_socket
    assert parse_database_url(db.url) == db


def test_url_defaults_follow_libpq() -> None:
    db = parse_database_url("postgresql:///")
    assert (db.host, db.port, db.user, db.dbname) == ("localhost", 5432, "postgres", "postgres")


def test_password_never_shows_in_repr_or_safe_url() -> None:
    db = parse_database_url(UNREACHABLE)
    assert "s3cret-pw" not in repr(db)
    assert "s3cret-pw" not in db.safe_url
    assert "s3cret-pw" not in db.describe()


def test_unreachable_external_server_is_one_line_without_the_password() -> None:
    with (
        pytest.raises(DatabaseUnavailable) as caught,
        open_database(Settings(database_url=UNREACHABLE)),
    ):
        pytest.fail("an unreachable server must not yield a database")
    message = str(caught.value)
    assert "127.0.0.1:1/casebook" in message
    assert "s3cret-pw" not in message
    assert "\n" not in message


def test_commands_report_an_unreachable_server_in_one_line(cli: CliRunner) -> None:
    result = cli("migrate", db=parse_database_url(UNREACHABLE))
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("casebook: error: cannot connect to PostgreSQL")
    assert result.stderr.count("\n") == 1
    assert "s3cret-pw" not in result.stderr
