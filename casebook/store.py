"""The event store: eventsourcing's PostgreSQL recorder plus two write-side tables.

Idempotency records and the case index are written by the same transaction that
inserts the events, after the notification-log table lock is taken: a command's
events, its idempotency record and its index row are committed together or not at
all, and the lock orders those writes so concurrent batches cannot deadlock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.rows import DictRow

from casebook.reads import CaseSummary

if TYPE_CHECKING:
    from casebook.database import Database
    from casebook.settings import Settings


@dataclass(frozen=True)
class IdempotencyRecord:
    """The first response to a client's idempotency key."""

    principal_id: str
    key: str
    fingerprint: str
    response: dict[str, Any]


_INSERT_IDEMPOTENCY = (
    "INSERT INTO casebook_idempotency (principal_id, idempotency_key, fingerprint, response)"
    " VALUES (%s, %s, %s, %s)"
)
# Rows are written in commit order (under the event table's lock), so the last write
# always carries the newest state.
_UPSERT_CASE_INDEX = (
    "INSERT INTO casebook_case_index (case_id, organisation_id, category, status, severity,"
    " title, opened_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (case_id) DO UPDATE SET status = EXCLUDED.status,"
    " severity = EXCLUDED.severity, title = EXCLUDED.title"
)


class CasebookRecorder(PostgresApplicationRecorder):
    """Inserts events, then the idempotency records and case index rows given to `save`."""

    def _insert_stored_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> None:
        super()._insert_stored_events(curs, stored_events, **kwargs)
        idempotency: Sequence[IdempotencyRecord] = kwargs.get("idempotency", ())
        case_index: Sequence[CaseSummary] = kwargs.get("case_index", ())
        expected_reads: Sequence[tuple[UUID, int]] = kwargs.get("expected_reads", ())
        if not idempotency and not case_index and not expected_reads:
            return
        # A separate cursor: the recorder reads the notification ids from `curs` next.
        with curs.connection.cursor() as extra:
            if expected_reads:
                extra.execute(
                    "SELECT casebook_expect_versions(%s::uuid[], %s::bigint[])",
                    ([i for i, _ in expected_reads], [v for _, v in expected_reads]),
                )
            if idempotency:
                extra.executemany(
                    _INSERT_IDEMPOTENCY,
                    [
                        (r.principal_id, r.key, r.fingerprint, json.dumps(r.response))
                        for r in idempotency
                    ],
                )
            if case_index:
                extra.executemany(
                    _UPSERT_CASE_INDEX,
                    [
                        (
                            r.case_id,
                            r.organisation_id,
                            r.category,
                            r.status,
                            r.severity,
                            r.title,
                            r.opened_at,
                        )
                        for r in sorted(case_index, key=lambda row: row.case_id)
                    ],
                )


def eventsourcing_env(database: Database, settings: Settings) -> dict[str, str]:
    """eventsourcing's configuration, built from our settings instead of os.environ."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": get_topic(CasebookRecorder),
        "POSTGRES_DBNAME": database.dbname,
        "POSTGRES_HOST": database.host,
        "POSTGRES_PORT": str(database.port),
        "POSTGRES_USER": database.user,
        "POSTGRES_PASSWORD": database.password or "",
        "POSTGRES_POOL_SIZE": str(settings.db_pool_size),
        "POSTGRES_MAX_OVERFLOW": "0",
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_LOCK_TIMEOUT": "5",
        "CREATE_TABLE": "y",
        # The write path trusts its cache and lets the version constraint catch
        # writes from other processes; a conflict evicts and reloads. Only the one
        # writer thread touches cached aggregates, and it evicts every aggregate of
        # a failed save, so copying them on each read would buy nothing.
        "AGGREGATE_CACHE_MAXSIZE": "10000",
        "AGGREGATE_CACHE_FASTFORWARD": "n",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
    }
