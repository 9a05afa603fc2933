"""Rebuilding the projections: their table sets, the history read from the database, and
the comparison of a rebuilt projection with the live one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from casebook.database import Database
from casebook.event_store import EventStore
from casebook.settings import Settings
from casebook.store import CasebookRecorder, OriginNotification
from consumers.rebuild import Batches, StoreSource, Tables
from consumers.records import Raw
from relay.cloudevents import CASE_EVENTS, record_for, topic_name
from relay.outbox import outbox_record

BATCH = 1000
CASE_EVENTS_PARTITION, SLA_OUTBOX_PARTITION = -1, -2

TABLES: dict[str, Tables] = {
    "sla": Tables(
        swapped=(
            "casebook_sla_cases",
            "casebook_sla_clocks",
            "casebook_sla_clock_history",
            "casebook_sla_organisations",
        ),
        # Transitions were published when they happened: a rebuild must not send them again.
        scratch=("casebook_sla_outbox", "casebook_sla_outbox_offsets"),
    ),
    "audit": Tables(
        swapped=("casebook_audit_entries", "casebook_audit_heads"),
        # Access records are not derived from events: they stay where they are.
    ),
}
# A rebuilt log numbers its entries anew, so the signed checkpoints over the old entry ids
# go to the archive with the old log (bundles exported earlier still verify offline) and
# the checkpointer starts a new series over the rebuilt one. Their outbox stays live.
OPTIONAL_AUDIT_TABLES = ("casebook_audit_checkpoints",)
OPTIONAL_AUDIT_SCRATCH = (
    "casebook_audit_checkpoint_outbox",
    "casebook_audit_checkpoint_outbox_offsets",
)
# Columns that legitimately differ between two builds of the same history.
IGNORED_COLUMNS = {"casebook_audit_entries": {"entry_id"}}
# Swapped but not derived from the history: checkpoints are signed by the checkpointer, at
# its own times, over entry ids, so a rebuilt log starts a new series and never equals them.
NOT_COMPARED = frozenset(OPTIONAL_AUDIT_TABLES)


def tables_of(name: str, db: Database) -> Tables:
    """The projection's tables as this database has them."""
    tables = TABLES[name]
    if name != "audit":
        return tables
    present = _existing(db, (*OPTIONAL_AUDIT_TABLES, *OPTIONAL_AUDIT_SCRATCH))
    return Tables(
        swapped=(*tables.swapped, *(t for t in OPTIONAL_AUDIT_TABLES if t in present)),
        scratch=(*tables.scratch, *(t for t in OPTIONAL_AUDIT_SCRATCH if t in present)),
    )


def _existing(db: Database, tables: tuple[str, ...]) -> set[str]:
    with psycopg.connect(db.url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_name = ANY(%s)",
            (list(tables),),
        ).fetchall()
    return {name for (name,) in rows}


class CaseEventsFromStore(StoreSource):
    """The event store's notification log, as the relay would publish it."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db, self._settings = db, settings
        self._topic = topic_name(settings.topic_prefix, CASE_EVENTS)

    def total(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT count(*) FROM public.casebook_events").fetchone()
        return int(row[0]) if row else 0

    def batches(self, resume: dict[int, int]) -> Batches:
        store = EventStore.open(self._db, self._settings)
        try:
            recorder = store.recorder
            assert isinstance(recorder, CasebookRecorder)  # eventsourcing_env names it
            start = max(resume.get(CASE_EVENTS_PARTITION, 1), 1)
            while True:
                # With their origins, as the relay reads them: the same records.
                notifications = recorder.select_with_origins(start, BATCH)
                if not notifications:
                    return
                yield [self._raw(store, n) for n in notifications]
                start = notifications[-1].id + 1
        finally:
            store.close()

    def _raw(self, store: EventStore, notification: OriginNotification) -> Raw:
        record = record_for(
            store.mapper.to_domain_event(notification),
            notification.id,
            source=self._settings.event_source,
            include_personal=self._settings.relay_include_personal_data,
            origin=notification.origin,
        )
        return Raw(
            self._topic,
            CASE_EVENTS_PARTITION,
            notification.id,
            record.key,
            tuple(record.headers),
            record.value,
        )


class SlaEventsFromOutbox(StoreSource):
    """The SLA tracker's outbox: every SLA event it published or will publish."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topic = topic_name(settings.topic_prefix, "sla-events.v1")
        self._url = ""

    def bind(self, db: Database) -> SlaEventsFromOutbox:
        self._url = db.url
        return self

    def total(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT count(*) FROM public.casebook_sla_outbox").fetchone()
        return int(row[0]) if row else 0

    def batches(self, resume: dict[int, int]) -> Batches:
        start = resume.get(SLA_OUTBOX_PARTITION, 0)
        with psycopg.connect(self._url) as conn:
            while True:
                rows = conn.execute(
                    "SELECT id, event_id, type, subject, time, payload, sequence "
                    "FROM public.casebook_sla_outbox WHERE id >= %s ORDER BY id LIMIT %s",
                    (start, BATCH),
                ).fetchall()
                conn.commit()
                if not rows:
                    return
                yield [self._raw(row) for row in rows]
                start = rows[-1][0] + 1

    def _raw(self, row: Any) -> Raw:
        record = outbox_record(row, self._settings.event_source)
        return Raw(
            self._topic,
            SLA_OUTBOX_PARTITION,
            int(row[0]),
            record["key"],
            tuple(record["headers"]),
            record["value"],
        )


class Chained(StoreSource):
    """Several sources one after another."""

    def __init__(self, *sources: StoreSource) -> None:
        self._sources = sources

    def total(self, conn: psycopg.Connection[Any]) -> int:
        return sum(source.total(conn) for source in self._sources)

    def batches(self, resume: dict[int, int]) -> Batches:
        for source in self._sources:
            yield from source.batches(resume)


def store_source(name: str, db: Database, settings: Settings) -> StoreSource:
    """Where a projection's history is in the database."""
    cases = CaseEventsFromStore(db, settings)
    if name == "audit":
        return Chained(cases, SlaEventsFromOutbox(settings).bind(db))
    return cases


@dataclass(frozen=True)
class Difference:
    table: str
    only_live: int
    only_other: int
    samples: list[str]


def compare(db: Database, name: str, other_schema: str) -> list[Difference]:
    """Rows that differ between the live tables of `name` and those in `other_schema`."""
    differences = []
    with psycopg.connect(db.url) as conn:
        for table in tables_of(name, db).swapped:
            if table in NOT_COMPARED:
                continue
            columns = [
                column
                for (column,) in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                    (table,),
                ).fetchall()
                if column not in IGNORED_COLUMNS.get(table, set())
            ]
            picked = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
            live, other = sql.Identifier("public", table), sql.Identifier(other_schema, table)
            only_live = _except(conn, picked, live, other)
            only_other = _except(conn, picked, other, live)
            if only_live or only_other:
                samples = [f"live only: {row}" for row in only_live[:3]]
                samples += [f"{other_schema} only: {row}" for row in only_other[:3]]
                differences.append(Difference(table, len(only_live), len(only_other), samples))
    return differences


def _except(
    conn: psycopg.Connection[Any],
    columns: sql.Composable,
    left: sql.Composable,
    right: sql.Composable,
) -> list[Any]:
    query = sql.SQL("SELECT {c} FROM {l} EXCEPT ALL SELECT {c} FROM {r}").format(
        c=columns, l=left, r=right
    )
    return conn.execute(query).fetchall()
