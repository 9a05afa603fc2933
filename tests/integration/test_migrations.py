"""Versioned SQL migrations: safe to repeat, safe to run from two processes at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from casebook.database import Database
from entrypoints.migrate import (
    MIGRATIONS_DIR,
    MigrationFailed,
    apply_migrations,
    pending_migrations,
)
from tests.integration.conftest import ON_BOTH_SERVERS, CliRunner, DatabaseFactory

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]

ALL_MIGRATIONS = sorted(p.stem for p in MIGRATIONS_DIR.glob("*.sql") if ".rollback" not in p.name)


def test_applying_twice_applies_nothing_the_second_time(new_database: DatabaseFactory) -> None:
    db = new_database()
    assert pending_migrations(db) == ALL_MIGRATIONS
    assert apply_migrations(db) == ALL_MIGRATIONS
    assert apply_migrations(db) == []
    assert pending_migrations(db) == []


def test_migrations_create_the_tables_the_write_side_shares(database: Database) -> None:
    with psycopg.connect(database.url) as conn:
        columns = {
            (table, column): (data_type, nullable)
            for table, column, data_type, nullable in conn.execute(
                "SELECT table_name, column_name, data_type, is_nullable"
                " FROM information_schema.columns WHERE table_schema = current_schema()"
                " AND table_name LIKE 'casebook\\_%'"
            )
        }
        index = conn.execute(
            "SELECT indexdef FROM pg_indexes"
            " WHERE indexname = 'casebook_case_index_by_organisation'"
        ).fetchone()
    assert columns[("casebook_api_keys", "secret_hash")] == ("text", "NO")
    assert columns[("casebook_api_keys", "revoked_at")] == ("timestamp with time zone", "YES")
    assert columns[("casebook_idempotency", "response")] == ("jsonb", "NO")
    assert columns[("casebook_case_index", "severity")] == ("text", "YES")
    assert columns[("casebook_case_index", "opened_at")] == ("timestamp with time zone", "NO")
    assert index is not None and "(organisation_id, opened_at, case_id)" in index[0]


def test_api_keys_accept_only_known_roles(clean_database: Database) -> None:
    with psycopg.connect(clean_database.url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO casebook_api_keys (key_id, role, principal_id, secret_hash)"
            " VALUES (gen_random_uuid(), 'customer_admin', 'ada', 'sha256:x')"
        )


def test_idempotency_keys_are_unique_per_principal(clean_database: Database) -> None:
    insert = (
        "INSERT INTO casebook_idempotency (principal_id, idempotency_key, fingerprint, response)"
        " VALUES (%s, 'k1', 'f', '{}')"
    )
    with psycopg.connect(clean_database.url) as conn:
        conn.execute(insert, ("bob",))
        conn.execute(insert, ("sue",))  # same key, another principal: a different command
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, ("bob",))


def test_two_processes_migrating_at_once_both_succeed(new_database: DatabaseFactory) -> None:
    db = new_database()
    env = {**os.environ, "CASEBOOK_DATABASE_URL": db.url, "CASEBOOK_LOG_FORMAT": "json"}
    command = [sys.executable, "-c", "from entrypoints.cli import run; run()", "migrate"]
    processes = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    printed = sorted(stdout for stdout, _ in outputs)
    assert printed == ["".join(f"applied {m}\n" for m in ALL_MIGRATIONS), "nothing to apply\n"]


def test_migrate_command_says_when_there_is_nothing_to_apply(
    cli: CliRunner, database: Database
) -> None:
    result = cli("migrate", db=database)
    assert (result.code, result.stdout) == (0, "nothing to apply\n")


def test_a_failing_migration_is_reported_in_one_line_and_rolled_back(
    new_database: DatabaseFactory, tmp_path: Path
) -> None:
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE casebook_good (id int);\n")
    (tmp_path / "0002_bad.sql").write_text(
        "-- depends: 0001_good\nCREATE TABLE casebook_half (id int);\nSELECT * FROM nowhere;\n"
    )
    db = new_database()
    with pytest.raises(MigrationFailed) as caught:
        apply_migrations(db, tmp_path)
    assert str(caught.value).startswith('migration 0002_bad failed: relation "nowhere"')
    assert "\n" not in str(caught.value)
    assert pending_migrations(db, tmp_path) == ["0002_bad"]
    with psycopg.connect(db.url) as conn:
        assert conn.execute("SELECT to_regclass('casebook_half')").fetchone() == (None,)
