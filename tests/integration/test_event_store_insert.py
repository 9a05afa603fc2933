"""The write side's insert: events and side rows in one transaction, sent in one round trip.

A batch is one transaction (BEGIN, table lock, NOTIFY, events, side rows, COMMIT) sent
as one pipeline with a single sync. Whatever refuses it (a version taken, an
idempotency key used, a version read that moved on) must reach the caller as that
conflict, leave nothing of the batch stored and no transaction open on the server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from psycopg.pq import TransactionStatus

from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from casebook.store import CasebookRecorder, IdempotencyRecord
from tests.integration.conftest import ON_BOTH_SERVERS

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]
TOPIC = "tests.integration.test_event_store_insert:Opaque"  # never decoded here


@pytest.fixture
def recorder(clean_database: Database) -> Iterator[CasebookRecorder]:
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    recorder = casebook.store.recorder
    assert isinstance(recorder, CasebookRecorder)
    yield recorder
    casebook.close()


def event(originator_id: UUID, version: int) -> StoredEvent:
    return StoredEvent(originator_id, version, TOPIC, json.dumps({"v": version}).encode())


def key(name: str) -> IdempotencyRecord:
    return IdempotencyRecord("agent-1", name, "fingerprint", {"version": 1})


def stored(database: Database, originator_id: UUID) -> list[int]:
    with psycopg.connect(database.url) as conn:
        rows = conn.execute(
            "SELECT originator_version FROM casebook_events WHERE originator_id = %s"
            " ORDER BY originator_version",
            (originator_id,),
        ).fetchall()
    return [row[0] for row in rows]


@pytest.fixture
def handed_back(recorder: CasebookRecorder, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The transaction status of every connection the recorder gives back to its pool.

    The pool would roll back a connection handed back inside a transaction itself, but
    in a worker thread, later, with a warning: the recorder must not rely on that."""
    statuses: list[str] = []
    original = recorder.datastore.get_connection

    @contextmanager
    def recording() -> Iterator[Any]:
        with original() as conn:
            try:
                yield conn
            finally:
                statuses.append(TransactionStatus(conn.info.transaction_status).name)

    monkeypatch.setattr(recorder.datastore, "get_connection", recording)
    return statuses


def driver_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What psycopg complained about (a pipeline ended on top of an error, say)."""
    return [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")]


def open_transactions(database: Database) -> int:
    """Sessions on this database left inside a transaction (aborted or not)."""
    with psycopg.connect(database.url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state LIKE 'idle in transaction%%'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_batch_gets_its_notification_ids_in_order_with_its_side_rows(
    recorder: CasebookRecorder, clean_database: Database
) -> None:
    first, second = uuid4(), uuid4()

    ids = recorder.insert_events(
        [event(first, 1), event(second, 1), event(first, 2)], idempotency=[key("k1")]
    )

    assert ids is not None and len(ids) == 3 and list(ids) == sorted(ids)
    with psycopg.connect(clean_database.url) as conn:
        by_id = conn.execute(
            "SELECT notification_id, originator_id, originator_version FROM casebook_events"
            " ORDER BY notification_id"
        ).fetchall()
        keys = conn.execute("SELECT idempotency_key FROM casebook_idempotency").fetchall()
    assert [(row[1], row[2]) for row in by_id] == [(first, 1), (second, 1), (first, 2)]
    assert [row[0] for row in by_id] == list(ids)
    assert keys == [("k1",)]


def test_a_taken_version_stores_nothing_of_the_batch_and_leaves_no_transaction_open(
    recorder: CasebookRecorder,
    clean_database: Database,
    caplog: pytest.LogCaptureFixture,
    handed_back: list[str],
) -> None:
    taken, bystander = uuid4(), uuid4()
    recorder.insert_events([event(taken, 1)])

    with pytest.raises(IntegrityError):
        recorder.insert_events([event(bystander, 1), event(taken, 1)], idempotency=[key("k2")])

    assert stored(clean_database, bystander) == []
    assert handed_back == ["IDLE", "IDLE"]
    assert open_transactions(clean_database) == 0
    assert driver_warnings(caplog) == []
    assert recorder.insert_events([event(bystander, 1)]) is not None  # the store goes on


def test_a_used_idempotency_key_after_the_events_is_a_conflict_and_undoes_them(
    recorder: CasebookRecorder,
    clean_database: Database,
    caplog: pytest.LogCaptureFixture,
    handed_back: list[str],
) -> None:
    case = uuid4()
    recorder.insert_events([event(case, 1)], idempotency=[key("once")])

    # The key's row is sent after the events: the events were inserted when it failed.
    with pytest.raises(IntegrityError):
        recorder.insert_events([event(case, 2)], idempotency=[key("once")])

    assert stored(clean_database, case) == [1]
    assert handed_back == ["IDLE", "IDLE"]
    assert open_transactions(clean_database) == 0
    assert driver_warnings(caplog) == []


def test_a_version_read_that_moved_on_refuses_the_batch(
    recorder: CasebookRecorder, clean_database: Database
) -> None:
    organisation, case = uuid4(), uuid4()
    recorder.insert_events([event(organisation, 1), event(organisation, 2)])

    with pytest.raises(IntegrityError, match="changed after it was read"):
        recorder.insert_events([event(case, 1)], expected_reads=[(organisation, 1)])

    assert stored(clean_database, case) == []
    assert recorder.insert_events([event(case, 1)], expected_reads=[(organisation, 2)])
