"""Rebuild a projection beside the live one and switch over when it has caught up.

Blue/green in one database: the rebuild gets a schema of its own holding empty copies
of the projection's tables and of the runtime's state tables, and its connection's
`search_path` puts that schema first, so the projection and the runtime run unchanged.
It replays the whole history (from Kafka, reading every partition from the start, or
from the event store) while the live consumer keeps serving. To switch over, one
transaction locks the live group's offsets (the live consumer waits at its next
batch), lets the rebuild apply whatever the live one had applied beyond it, moves the
live tables to an archive schema and the rebuilt ones into their place, and hands the
rebuilt runtime state (offsets, sequences) to the live group. The live consumer then
carries on from there; what it polled before the switch is dropped as already applied.

It stays one module because a rebuild's three phases (prepare, catch up, switch over)
share the scratch schema's bookkeeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
import structlog
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql

from casebook.database import Database
from casebook.settings import Settings
from consumers import state
from consumers.batch import apply_batch
from consumers.projection import Projection
from consumers.records import Raw
from messaging.kafka_clients import end_offsets, new_consumer

log = structlog.get_logger("casebook.rebuild")
Source = Literal["kafka", "store"]
RUNTIME_TABLES = (
    "casebook_consumer_offsets",
    "casebook_consumer_sequences",
    "casebook_consumer_parked",
    "casebook_consumer_parked_events",
    "casebook_consumer_dead_letters",
    "casebook_consumer_status",
    "casebook_consumer_waiting",
    "casebook_consumer_waiting_events",
    "casebook_consumer_topics",
)
POLL_MS = 500
SWITCH_ATTEMPTS = 5
BATCH = 1000


class RebuildRefused(RuntimeError):
    """The rebuild cannot start or cannot switch over; the message says why."""


@dataclass(frozen=True)
class Tables:
    """A projection's tables: those replaced at switch-over, and scratch ones it writes
    but that stay live (an outbox: the rebuild must not publish anything again)."""

    swapped: tuple[str, ...]
    scratch: tuple[str, ...] = ()


@dataclass
class Progress:
    applied: int
    total: int
    started: float

    @property
    def eta_seconds(self) -> float | None:
        elapsed = time.monotonic() - self.started
        if not self.applied or self.applied >= self.total:
            return None
        return elapsed / self.applied * (self.total - self.applied)


@dataclass(frozen=True)
class Outcome:
    schema: str
    archive: str
    events: int
    dead_letters: int


Batches = Iterator[list[Raw]]


class StoreSource:
    """The history read from the database instead of Kafka (see entrypoints/rebuilds.py).

    Records carry their Kafka topic's name, so sequences match what the live group keeps,
    and a negative partition per source with its position as offset, so a rebuild knows
    how far it read.
    """

    def total(self, conn: psycopg.Connection[Any]) -> int:
        raise NotImplementedError

    def batches(self, resume: dict[int, int]) -> Batches:
        """Records after `resume[partition]` (next position per source partition)."""
        raise NotImplementedError


class Rebuild:
    """One rebuild of `projection` into a fresh schema, then the switch-over."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        projection: Projection,
        tables: Tables,
        *,
        source: Source = "kafka",
        store: StoreSource | None = None,
        progress: Callable[[Progress], None] = lambda _: None,
    ) -> None:
        if source == "store" and store is None:
            raise RebuildRefused(f"{projection.name} cannot be rebuilt from the store")
        # Down to the microsecond: two rebuilds begun within one second get schemas of their own.
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        self.schema = f"rebuild_{projection.name}_{stamp}"
        self.archive = f"archive_{projection.name}_{stamp}"
        self._db = db
        self._settings = settings
        self._projection = projection
        self._tables = tables
        self._source = source
        self._store = store
        self._kafka: KafkaConsumer | None = None
        self._progress = progress
        self._topics = [f"{settings.topic_prefix}.{t}" for t in projection.topics]
        self._contiguous = [f"{settings.topic_prefix}.{t}" for t in projection.contiguous_topics]
        # Unqualified names find the rebuild's tables first: projection and runtime unchanged.
        self.rebuild_db = replace(
            db, params=(*db.params, ("options", f"-csearch_path={self.schema},public"))
        )

    def run(self, stop: threading.Event | None = None) -> Outcome:
        """Prepare, catch up, switch over; the archive schema keeps the old tables."""
        stop = stop or threading.Event()
        self.prepare()
        try:
            # Autocommit: each `transaction()` block commits on its own, and no read leaves
            # a transaction open that would hold locks the switch-over needs.
            with psycopg.connect(self.rebuild_db.url, autocommit=True) as conn:
                return self._catch_up_and_switch(conn, stop)
        finally:
            if self._kafka is not None:
                self._kafka.close()

    def _catch_up_and_switch(self, conn: psycopg.Connection[Any], stop: threading.Event) -> Outcome:
        if self._source == "kafka":
            events = self._catch_up_from_kafka(conn, stop)
        else:
            events = self._catch_up_from_store(conn, stop)
        if stop.is_set():
            raise RebuildRefused(f"stopped before switching over; {self.schema} is kept")
        waiting = _count(conn, "SELECT count(*) FROM casebook_consumer_waiting")
        if waiting:
            raise RebuildRefused(
                f"{waiting} subject(s) of the rebuild wait for events missing from the source "
                f"(a gap in their sequence); nothing was switched (inspect schema {self.schema})"
            )
        dead = _count(conn, "SELECT count(*) FROM casebook_consumer_dead_letters")
        if dead:
            raise RebuildRefused(
                f"the rebuild dead-lettered {dead} event(s); nothing was switched "
                f"(inspect schema {self.schema})"
            )
        self._switch_retrying_deadlocks(conn)
        log.info("rebuild.switched", projection=self._projection.name, archive=self.archive)
        return Outcome(self.schema, self.archive, events, dead)

    def prepare(self) -> None:
        """The rebuild schema with empty copies of every table involved."""
        with psycopg.connect(self._db.url, autocommit=True) as conn, conn.transaction():
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
            for table in (*self._tables.swapped, *self._tables.scratch, *RUNTIME_TABLES):
                _copy_table(conn, table, self.schema)
        log.info("rebuild.prepared", projection=self._projection.name, schema=self.schema)

    # --- catching up --------------------------------------------------------------------

    def _catch_up_from_kafka(self, conn: psycopg.Connection[Any], stop: threading.Event) -> int:
        if self._settings.kafka_bootstrap_servers is None:
            raise RebuildRefused("set KAFKA_BOOTSTRAP_SERVERS to rebuild from Kafka")
        bootstrap = self._settings.kafka_bootstrap_servers
        consumer = self._kafka = new_consumer(
            self._settings,
            bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=BATCH,
        )
        partitions = [
            TopicPartition(topic, p)
            for topic in self._topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        # What the topics held when the rebuild began; the switch-over applies the rest.
        ends = end_offsets(self._settings, bootstrap, partitions)
        batches = self._kafka_batches(consumer, ends)
        return self._apply_until(conn, stop, batches, sum(ends.values()))

    def _kafka_batches(
        self, consumer: KafkaConsumer, ends: dict[TopicPartition, int]
    ) -> Iterator[list[Raw]]:
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            polled = consumer.poll(timeout_ms=POLL_MS)
            yield [Raw.of(r) for batch in polled.values() for r in batch]

    def _catch_up_from_store(self, conn: psycopg.Connection[Any], stop: threading.Event) -> int:
        assert self._store is not None
        total = self._store.total(conn)
        return self._apply_until(conn, stop, self._store.batches({}), total)

    def _apply_until(
        self, conn: psycopg.Connection[Any], stop: threading.Event, batches: Batches, total: int
    ) -> int:
        progress = Progress(0, total, time.monotonic())
        for records in batches:
            if stop.is_set():
                break
            if records:
                with conn.transaction():
                    apply_batch(
                        conn, self._projection, records, max_attempts=1, contiguous=self._contiguous
                    )
                progress.applied += len(records)
                progress.total = max(progress.total, progress.applied)
                self._progress(progress)
        return progress.applied

    # --- switching over -----------------------------------------------------------------

    def _switch_retrying_deadlocks(self, rebuild: psycopg.Connection[Any]) -> None:
        """Switch over; a deadlock with a live reader (the SLA timer reads two of the
        swapped tables in one statement) rolls the switch back whole, so it is tried again."""
        for attempt in range(1, SWITCH_ATTEMPTS + 1):
            try:
                self._switch(rebuild)
                return
            except psycopg.errors.DeadlockDetected:
                if attempt == SWITCH_ATTEMPTS:
                    raise
                log.warning("rebuild.switch.deadlock", projection=self._projection.name,
                            attempt=attempt, action="trying again")  # fmt: skip
                time.sleep(0.2 * attempt)

    def _switch(self, rebuild: psycopg.Connection[Any]) -> None:
        group = self._projection.name
        with psycopg.connect(self._db.url, autocommit=True) as conn, conn.transaction():
            live = _lock_live_offsets(conn, group)
            if self._source == "kafka":
                self._reach(rebuild, live)
            else:
                self._finish_store(rebuild)
            archive, rebuilt = sql.Identifier(self.archive), sql.Identifier(self.schema)
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(archive))
            for table in self._tables.swapped:
                name = sql.Identifier(table)
                conn.execute(sql.SQL("ALTER TABLE public.{} SET SCHEMA {}").format(name, archive))
                conn.execute(sql.SQL("ALTER TABLE {}.{} SET SCHEMA public").format(rebuilt, name))
            self._hand_over_state(conn, group)

    def _reach(self, rebuild: psycopg.Connection[Any], live: dict[tuple[str, int], int]) -> None:
        """Apply from Kafka until the rebuild has every offset the live group had."""
        consumer = self._kafka
        assert consumer is not None

        def behind() -> bool:
            with rebuild.transaction():
                mine = state.stored_offsets(rebuild, self._projection.name, live)
            return any(mine.get(tp, 0) < offset for tp, offset in live.items())

        deadline = time.monotonic() + 60
        while behind():
            if time.monotonic() > deadline:
                raise RebuildRefused("the rebuild could not reach the live offsets in 60 s")
            polled = consumer.poll(timeout_ms=POLL_MS)
            records = [Raw.of(r) for batch in polled.values() for r in batch]
            if records:
                with rebuild.transaction():
                    apply_batch(
                        rebuild,
                        self._projection,
                        records,
                        max_attempts=1,
                        contiguous=self._contiguous,
                    )

    def _finish_store(self, rebuild: psycopg.Connection[Any]) -> None:
        """Apply what was stored since the catch-up: the live group cannot be ahead of it."""
        assert self._store is not None
        with rebuild.transaction():
            rows = rebuild.execute(
                "SELECT partition, max(next_offset) FROM casebook_consumer_offsets "
                "WHERE partition < 0 GROUP BY partition"
            ).fetchall()
        for records in self._store.batches(dict(rows)):
            with rebuild.transaction():
                apply_batch(
                    rebuild, self._projection, records, max_attempts=1, contiguous=self._contiguous
                )

    def _hand_over_state(self, conn: psycopg.Connection[Any], group: str) -> None:
        rebuilt = sql.Identifier(self.schema)
        conn.execute(
            "DELETE FROM public.casebook_consumer_parked_events WHERE consumer_group = %s",
            (group,),
        )
        conn.execute(
            "DELETE FROM public.casebook_consumer_parked WHERE consumer_group = %s", (group,)
        )
        # What the live group waited for is in the rebuilt state, which has no gap.
        conn.execute(
            "DELETE FROM public.casebook_consumer_waiting WHERE consumer_group = %s", (group,)
        )
        conn.execute(
            "DELETE FROM public.casebook_consumer_sequences WHERE consumer_group = %s", (group,)
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO public.casebook_consumer_sequences SELECT * FROM {}."
                "casebook_consumer_sequences WHERE consumer_group = %s"
            ).format(rebuilt),
            (group,),
        )
        if self._source == "kafka":
            # The live group goes on from where the rebuild stopped reading.
            conn.execute(
                "DELETE FROM public.casebook_consumer_offsets WHERE consumer_group = %s",
                (group,),
            )
            conn.execute(
                sql.SQL(
                    "INSERT INTO public.casebook_consumer_offsets SELECT * FROM {}."
                    "casebook_consumer_offsets WHERE consumer_group = %s AND partition >= 0"
                ).format(rebuilt),
                (group,),
            )


def _lock_live_offsets(conn: psycopg.Connection[Any], group: str) -> dict[tuple[str, int], int]:
    rows = conn.execute(
        "SELECT topic, partition, next_offset FROM public.casebook_consumer_offsets "
        "WHERE consumer_group = %s ORDER BY topic, partition FOR UPDATE",
        (group,),
    ).fetchall()
    return {(topic, partition): offset for topic, partition, offset in rows if offset >= 0}


def _copy_table(conn: psycopg.Connection[Any], table: str, schema: str) -> None:
    """An empty copy with the same columns, defaults, constraints and indexes, and its own
    sequences (a copied default would still draw from the live table's sequence)."""
    target = sql.Identifier(schema, table)
    conn.execute(
        sql.SQL("CREATE TABLE {} (LIKE public.{} INCLUDING ALL)").format(
            target, sql.Identifier(table)
        )
    )
    serials = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = %s AND column_default LIKE 'nextval(%%'",
        (schema, table),
    ).fetchall()
    for (column,) in serials:
        sequence = sql.Identifier(schema, f"{table}_{column}_seq")
        conn.execute(
            sql.SQL("CREATE SEQUENCE {} OWNED BY {}.{}").format(
                sequence, target, sql.Identifier(column)
            )
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT nextval({})").format(
                target, sql.Identifier(column), sql.Literal(f"{schema}.{table}_{column}_seq")
            )
        )


def _count(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row and row[0] is not None else 0
