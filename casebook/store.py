"""The event store: eventsourcing's PostgreSQL recorder plus the write side's tables.

Idempotency records, the case index, command origins and the messages to send (survey
invitations, `casebook.pending_notifications`) are written by the same transaction
that inserts the events (sent in one round trip), after the notification-log
table lock is taken: a command's events, its idempotency record, its index row and its
origin are committed together or not at all, and the lock orders those writes so
concurrent batches cannot deadlock. The relay reads each event's origin with the event
(`select_with_origins`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import InterfaceError, Notification, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic, retry
from psycopg import Cursor
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from casebook import incident_index, pending_notifications
from casebook.commands import Origin
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


# Each side table gets one statement per batch, whatever its size (column arrays, not a
# row per statement), sent unprepared: these statements share the events' pipeline, and
# when that pipeline is aborted (a version or key conflict) psycopg may record a
# statement as prepared that the server never prepared; the next save naming it failed
# with "prepared statement does not exist".
_INSERT_IDEMPOTENCY = (
    "INSERT INTO casebook_idempotency (principal_id, idempotency_key, fingerprint, response)"
    " SELECT p, k, f, r::jsonb FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[])"
    " AS u(p, k, f, r)"
)
# Rows are written in commit order (under the event table's lock), so the last write
# always carries the newest state.
_UPSERT_CASE_INDEX = (
    "INSERT INTO casebook_case_index (case_id, organisation_id, category, status, severity,"
    " title, opened_at, requester_id) SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::text[],"
    " %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::text[])"
    " ON CONFLICT (case_id) DO UPDATE SET status = EXCLUDED.status,"
    " severity = EXCLUDED.severity, title = EXCLUDED.title,"
    " requester_id = EXCLUDED.requester_id"
)


@dataclass(frozen=True)
class OriginRow:
    """The origin of one event: the command's origin, keyed by the event it recorded."""

    originator_id: UUID
    originator_version: int
    origin: Origin


@dataclass(frozen=True)
class OriginNotification(Notification):
    """A notification and the origin of the command that recorded it (None: no origin)."""

    origin: Origin | None = None


_EXPECT_LIVE_KEYS = "SELECT casebook_expect_live_keys(%s::uuid[])"  # migration 0026
_INSERT_ORIGINS = (
    "INSERT INTO casebook_command_origins (originator_id, originator_version, api_key_id,"
    " client_address, request_id, traceparent, tracestate) SELECT * FROM unnest(%s::uuid[],"
    " %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"
)


class CasebookRecorder(PostgresApplicationRecorder):
    """Inserts events with the idempotency records, case and incident index rows, origins,
    messages to send and read checks given to `save`, in one round trip; reads
    notifications with their origins."""

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """One transaction, sent as one pipeline with a single sync: BEGIN, the table
        lock (as eventsourcing takes it: commit order is notification order), NOTIFY, the
        events, the side rows, COMMIT.

        eventsourcing's own insert waits for the server five times (after BEGIN, twice
        for the inserted ids, at COMMIT, at the pipeline's end); a batch's save is the
        writer's serial step, so those waits bound what the write side can take.
        """
        if not stored_events:
            return None
        with self.datastore.get_connection() as conn:
            try:
                return self._insert_in_one_round_trip(conn, stored_events, **kwargs)
            finally:
                # A refused transaction stays open on the server until rolled back.
                if conn.info.transaction_status != TransactionStatus.IDLE:
                    with suppress(psycopg.Error):
                        conn.execute("ROLLBACK")

    def _insert_in_one_round_trip(
        self, conn: psycopg.Connection[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> list[int]:
        refusal: psycopg.Error | None = None
        try:
            with conn.pipeline() as pipeline, conn.cursor() as control, conn.cursor() as events:
                try:
                    control.execute("BEGIN")
                    # eventsourcing's: table lock, NOTIFY, INSERT ... RETURNING the ids.
                    super()._insert_stored_events(events, stored_events)
                    self._insert_side_rows(
                        control,
                        kwargs.get("idempotency", ()),
                        kwargs.get("case_index", ()),
                        kwargs.get("expected_reads", ()),
                        kwargs.get("origins", ()),
                    )
                    if live_keys := kwargs.get("live_keys", ()):  # sealed under live keys only
                        control.execute(_EXPECT_LIVE_KEYS, (list(live_keys),), prepare=False)
                    if incidents := kwargs.get("incident_index", ()):
                        control.execute(
                            incident_index.UPSERT,
                            incident_index.upsert_parameters(incidents),
                            prepare=False,
                        )
                    if messages := kwargs.get("notifications", ()):
                        rows = [astuple(m) for m in messages]
                        control.execute(pending_notifications.INSERT, _columns(rows), prepare=False)
                    control.execute("COMMIT")
                    pipeline.sync()
                    return [row["notification_id"] for row in events.fetchall()]
                except psycopg.Error as error:
                    # A conflict may surface while later statements are still being sent
                    # (psycopg reads results as it goes): keep it, let the pipeline end.
                    refusal = error
        except psycopg.Error as error:
            # Ending the pipeline after a refusal reports the skipped statements as
            # "pipeline aborted": the refusal is what the caller must see (a version or
            # key conflict, retried or answered), not an error it would take for the
            # database being unavailable.
            refusal = refusal or error
        assert refusal is not None
        raise refusal

    def _insert_side_rows(
        self,
        curs: Cursor[DictRow],
        idempotency: Sequence[IdempotencyRecord],
        case_index: Sequence[CaseSummary],
        expected_reads: Sequence[tuple[UUID, int]],
        origins: Sequence[OriginRow],
    ) -> None:
        if expected_reads:
            curs.execute(
                "SELECT casebook_expect_versions(%s::uuid[], %s::bigint[])",
                ([i for i, _ in expected_reads], [v for _, v in expected_reads]),
                prepare=False,
            )
        if idempotency:
            keys = [
                (r.principal_id, r.key, r.fingerprint, json.dumps(r.response)) for r in idempotency
            ]
            curs.execute(_INSERT_IDEMPOTENCY, _columns(keys), prepare=False)
        if case_index:
            # One row per case (a statement may not upsert a row twice): the last.
            latest = {r.case_id: r for r in case_index}
            cases = [
                (
                    r.case_id,
                    r.organisation_id,
                    r.category,
                    r.status,
                    r.severity,
                    r.title,
                    r.opened_at,
                    r.requester_id,
                )
                for r in sorted(latest.values(), key=lambda row: row.case_id)
            ]
            curs.execute(_UPSERT_CASE_INDEX, _columns(cases), prepare=False)
        if origins:
            origin_rows = [
                (
                    r.originator_id,
                    r.originator_version,
                    r.origin.api_key_id,
                    r.origin.client_address,
                    r.origin.request_id,
                    r.origin.traceparent,
                    r.origin.tracestate,
                )
                for r in origins
            ]
            curs.execute(_INSERT_ORIGINS, _columns(origin_rows), prepare=False)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_with_origins(
        self, start: int, limit: int, *, inclusive_of_start: bool = True
    ) -> list[OriginNotification]:
        """Notifications from `start` in log order, each with its command's origin.

        One query: the origins are LEFT JOINed on the event's key, so events without an
        origin (CLI, demo, stored before origins were kept) come back with None. The join
        is LATERAL with LIMIT 1 (the key is unique) so that each event costs one primary
        key lookup: a plain join near the log's tail, where few events are left, was
        planned as a hash join over the whole origins table, growing with its size.
        """
        statement = SQL(
            "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic,"
            " e.state, o.api_key_id, o.client_address, o.request_id, o.traceparent,"
            " o.tracestate FROM {schema}.{events} e LEFT JOIN LATERAL (SELECT api_key_id,"
            " client_address, request_id, traceparent, tracestate"
            " FROM {schema}.casebook_command_origins"
            " WHERE originator_id = e.originator_id"
            " AND originator_version = e.originator_version LIMIT 1) o ON true"
            " WHERE e.notification_id {op} %s ORDER BY e.notification_id LIMIT %s"
        ).format(
            schema=Identifier(self.datastore.schema),
            events=Identifier(self.events_table_name),
            op=SQL(">=" if inclusive_of_start else ">"),
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (start, limit), prepare=True)
            return [_origin_notification(row) for row in curs.fetchall()]


def _origin_notification(row: DictRow) -> OriginNotification:
    fields = ("api_key_id", "client_address", "request_id", "traceparent", "tracestate")
    origin = (
        Origin(**{field: row[field] for field in fields})
        if any(row[field] is not None for field in fields)
        else None
    )
    return OriginNotification(
        id=row["notification_id"],
        originator_id=row["originator_id"],
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
        origin=origin,
    )


def eventsourcing_env(
    database: Database, settings: Settings, *, create_tables: bool = True
) -> dict[str, str]:
    """eventsourcing's configuration, built from our settings instead of os.environ.

    `create_tables` False for processes that start beside one that already made them:
    API workers started together, creating the same tables and functions at once, made
    PostgreSQL refuse one of them ("tuple concurrently updated").
    """
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
        "CREATE_TABLE": "y" if create_tables else "n",
        # The write path trusts its cache and lets the version constraint catch
        # writes from other processes; a conflict evicts and reloads. Only the one
        # writer thread touches cached aggregates, and it evicts every aggregate of
        # a failed save, so copying them on each read would buy nothing.
        "AGGREGATE_CACHE_MAXSIZE": "10000",
        "AGGREGATE_CACHE_FASTFORWARD": "n",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
    }


def _columns(rows: Sequence[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    """Rows as one list per column: the parameters of an `unnest` insert."""
    return tuple(list(column) for column in zip(*rows, strict=True))
