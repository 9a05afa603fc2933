"""The access log is one hash chain, pinned by signed checkpoints, on real PostgreSQL."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.rows import dict_row

from api.keys import KeyRole, KeyStore
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from entrypoints.migrate import MIGRATIONS_DIR, apply_migrations
from projections.audit.access_chain import record_hash
from projections.audit.checkpoint import FORMAT, problem
from projections.audit.checkpointer import checkpoint_now
from projections.audit.queries import Access, record_access
from projections.audit.verify import Verification, verify_log
from tests.integration.api_support import casebook_serve
from tests.integration.conftest import CliRunner, DatabaseFactory

pytestmark = pytest.mark.integration
KEY = Ed25519PrivateKey.generate()
CASE = "6f1c2b9e-0000-4000-8000-000000000001"


def read(number: int, **changes: str | None) -> Access:
    fields: dict[str, str | None] = {
        "principal_id": f"agent-{number}",
        "role": "agent",
        "route": "get_case",
        "method": "GET",
        "path": f"/cases/{CASE}",
        "case_id": CASE.upper(),  # kept as the database gives it back: lower case
        "organisation_id": None,
        "reason": f"ticket {number}",
        "request_id": f"req-{number}",
        "client_address": "10.0.0.7",
    }
    return Access(**(fields | changes))  # type: ignore[arg-type]


def record(database: Database, *accesses: Access) -> list[int]:
    ids = []
    with psycopg.connect(database.url) as conn:
        for access in accesses:
            with conn.transaction():
                ids.append(record_access(conn, access))
    return ids


def verified(database: Database) -> Verification:
    with psycopg.connect(database.url) as conn:
        return verify_log(conn)


def described(database: Database) -> list[str]:
    return [b.describe() for b in verified(database).breaks]


def change(database: Database, statement: str, *params: object) -> None:
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute(statement, params)


def checkpoint(database: Database) -> None:
    with psycopg.connect(database.url, autocommit=True) as conn:
        checkpoint_now(conn, KEY)


def test_access_records_form_one_intact_chain(clean_database: Database) -> None:
    ids = record(clean_database, read(1), read(2), read(3, on_behalf_of="ada@acme.example"))
    result = verified(clean_database)
    assert (result.intact, result.access_records, result.breaks) == (True, 3, [])
    with psycopg.connect(clean_database.url) as conn:
        rows = conn.execute(
            "SELECT access_id, seq, prev_hash, hash FROM casebook_audit_access ORDER BY seq"
        ).fetchall()
        head = conn.execute("SELECT seq, hash FROM casebook_audit_access_head").fetchone()
    assert [r[0] for r in rows] == ids and [r[1] for r in rows] == [1, 2, 3]
    assert rows[0][2] == "0" * 64 and rows[1][2] == rows[0][3] and rows[2][2] == rows[1][3]
    assert head == (3, rows[2][3])


def test_an_edited_access_record_is_named(clean_database: Database) -> None:
    ids = record(clean_database, read(1), read(2), read(3))
    change(clean_database, "UPDATE casebook_audit_access SET reason = 'nothing' WHERE seq = 2")
    assert described(clean_database) == [
        f"access log: record 2 (record id {ids[1]}): its content does not match its hash"
    ]


def test_an_access_record_deleted_from_the_middle_is_named(clean_database: Database) -> None:
    ids = record(clean_database, read(1), read(2), read(3))
    change(clean_database, "DELETE FROM casebook_audit_access WHERE seq = 2")
    assert described(clean_database) == [
        f"access log: record 3 (record id {ids[2]}): record 2 is missing before it"
    ]


def test_an_inserted_or_reordered_access_record_is_named(clean_database: Database) -> None:
    ids = record(clean_database, read(1), read(2), read(3))
    change(
        clean_database,
        "INSERT INTO casebook_audit_access (principal_id, role, route, method, path, seq, "
        "prev_hash, hash) SELECT 'mallory', role, route, method, path, seq, prev_hash, hash "
        "FROM casebook_audit_access WHERE seq = 2",
    )
    [inserted] = described(clean_database)
    assert inserted.startswith("access log: record 2 (record id ")
    assert inserted.endswith("record 2 appears again or out of order")
    change(clean_database, "DELETE FROM casebook_audit_access WHERE principal_id = 'mallory'")
    change(clean_database, "UPDATE casebook_audit_access SET seq = 5 - seq WHERE seq IN (2, 3)")
    assert described(clean_database) == [
        f"access log: record 2 (record id {ids[2]}): it does not link to the record before it"
    ]


def test_records_cut_from_the_end_are_found_through_the_head(clean_database: Database) -> None:
    record(clean_database, read(1), read(2), read(3))
    change(clean_database, "DELETE FROM casebook_audit_access WHERE seq = 3")
    assert described(clean_database) == [
        "access log: the chain's head: the chain ends at record 2 but its recorded head is record 3"
    ]


def test_records_cut_from_the_end_after_a_checkpoint_are_found_through_it(
    clean_database: Database,
) -> None:
    record(clean_database, read(1), read(2), read(3))
    checkpoint(clean_database)
    record(clean_database, read(4))
    assert verified(clean_database).intact
    # The tail cut and the head rewound to match: only the signed head can tell.
    change(clean_database, "DELETE FROM casebook_audit_access WHERE seq >= 3")
    change(
        clean_database,
        "UPDATE casebook_audit_access_head SET (seq, hash) = "
        "(SELECT seq, hash FROM casebook_audit_access WHERE seq = 2)",
    )
    assert described(clean_database) == [
        "access log: record 3: signed by checkpoint 1 as the access log's head, record 3 is missing"
    ]


def test_a_checkpoint_signs_the_access_head_even_without_new_entries(
    clean_database: Database,
) -> None:
    record(clean_database, read(1))
    with psycopg.connect(clean_database.url, autocommit=True) as conn:
        [first] = checkpoint_now(conn, KEY)
        assert checkpoint_now(conn, KEY) == []  # nothing moved: nothing to sign
        record(clean_database, read(2))
        [second] = checkpoint_now(conn, KEY)
        head = conn.execute("SELECT seq, hash FROM casebook_audit_access_head").fetchone()
    assert (first.format, first.count, first.access_seq) == (FORMAT, 0, 1)
    assert (second.count, second.after, second.upto) == (0, first.upto, first.upto)
    assert (second.access_seq, second.access_hash) == head
    assert second.prev_digest == first.digest
    assert problem(second, KEY.public_key()) is None


def test_concurrent_writers_append_one_chain(clean_database: Database) -> None:
    writers, each = 6, 15
    failures: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            record(clean_database, *(read(writer * 100 + n) for n in range(each)))
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    result = verified(clean_database)
    assert (result.intact, result.access_records) == (True, writers * each)
    with psycopg.connect(clean_database.url) as conn:
        seqs = [r[0] for r in conn.execute("SELECT seq FROM casebook_audit_access ORDER BY seq")]
    assert seqs == list(range(1, writers * each + 1))


def test_api_processes_reading_at_once_append_one_chain(clean_database: Database) -> None:
    Casebook.connect(clean_database, Settings(database_url=clean_database.url)).close()
    token = KeyStore.for_database(clean_database).create(KeyRole.AGENT).token
    reads = 90
    with casebook_serve(clean_database, workers=3) as base:

        def get(number: int) -> int:
            headers = {"Authorization": f"Bearer {token}", "X-Access-Reason": f"r{number}"}
            return httpx.get(f"{base}/queue", headers=headers, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(get, range(reads)))
    assert statuses == [200] * reads
    result = verified(clean_database)
    assert (result.intact, result.access_records, result.breaks) == (True, reads, [])


def test_verify_names_a_broken_access_log_and_exits_1(
    cli: CliRunner, clean_database: Database
) -> None:
    Casebook.connect(clean_database, Settings(database_url=clean_database.url)).close()
    record(clean_database, read(1), read(2))
    intact = cli("audit", "verify", db=clean_database)
    assert intact.code == 0, intact.stderr
    assert intact.stdout == (
        "the audit log: 0 entries in 0 chain(s) and 2 access record(s): intact\n"
    )
    change(clean_database, "UPDATE casebook_audit_access SET path = '/queue' WHERE seq = 1")
    broken = cli("audit", "verify", db=clean_database)
    assert broken.code == 1
    assert "  access log: record 1 (record id " in broken.stdout
    assert broken.stdout.rstrip().endswith("its content does not match its hash")


def test_the_migration_chains_the_records_written_before_it(
    new_database: DatabaseFactory, tmp_path: Path
) -> None:
    before = tmp_path / "migrations"
    before.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if not path.name.startswith("0025_"):
            shutil.copy(path, before / path.name)
    db = new_database()
    apply_migrations(db, before)
    odd = ['quote " and \\ backslash', "line\nbreak\ttab\x01", "café ☕ 𝄞", None]
    with psycopg.connect(db.url, autocommit=True) as conn:
        for number, text in enumerate(odd):
            conn.execute(
                "INSERT INTO casebook_audit_access (at, principal_id, role, route, method, path, "
                "case_id, reason, client_address, on_behalf_of) VALUES "
                "('2025-03-04 10:11:12.000042+02', %s, 'agent', 'get_case', 'GET', %s, %s, %s, "
                "%s, %s)",
                (f"p{number}", f"/cases/{text}", CASE, text, text, text),
            )
    assert apply_migrations(db) == ["0025_access_chain"]
    result = verified(db)
    assert (result.intact, result.access_records) == (True, len(odd)), result.breaks
    record(db, read(9))  # new records go on from the migrated head
    assert verified(db).access_records == len(odd) + 1 and verified(db).intact


def test_the_hash_covers_every_column_but_the_id(clean_database: Database) -> None:
    record(clean_database, read(1))
    with psycopg.connect(clean_database.url) as conn, conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM casebook_audit_access").fetchone()
    assert row is not None and record_hash(row) == row["hash"]
    for column in set(row) - {"access_id", "hash"}:
        assert record_hash(row | {column: "x"}) != row["hash"], column
