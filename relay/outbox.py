"""Publish an outbox table to Kafka exactly once, even across crashes.

A projection writes outbox rows in the transaction that changes it. One publisher (an
advisory lock elects it) sends pending rows in id order, waits for the broker's
acknowledgements, then marks the rows published and remembers, per partition, the
offset after the last record it marked. A publisher killed between the acknowledgement
and the mark has sent records it did not mark: on start the next one reads each
partition from the remembered offset to its end, marks every outbox id it finds there
(`ce_position`), and only then sends what is still pending. Nothing is lost, nothing
goes out twice.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaConfigurationError, KafkaError, KafkaTimeoutError
from psycopg import sql

from casebook.database import Database
from casebook.settings import Settings
from casebook.supervision import report_lag, report_trouble
from messaging.kafka_clients import (
    delivery_timeout_s,
    end_offsets,
    ensure_topic,
    new_consumer,
    new_producer,
    topic_partitions,
)
from relay.cloudevents import SPEC_VERSION, topic_name
from relay.leadership import leadership

log = structlog.get_logger("casebook.outbox")
TAIL_POLL_MS = 300
# Reading what an earlier publisher sent past the saved offsets; the end is known up front.
TAIL_READ_S = 60.0


@dataclass(frozen=True)
class OutboxTable:
    """Where an outbox lives: its rows, its per-partition offsets, its topic."""

    rows: str
    offsets: str
    topic: str  # under the topic prefix, e.g. "sla-events.v1"


class OutboxPublisher:
    """Publishes one outbox table while it holds the outbox's leadership lock."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        table: OutboxTable,
        *,
        bootstrap_servers: str,
        batch: int = 500,
        idle_seconds: float = 0.05,
    ) -> None:
        self._database = database
        self._settings = settings
        # Past the producer's own delivery timeout: by then each record succeeded or failed.
        self._ack_timeout_s = delivery_timeout_s(settings) + 5
        self._table = table
        self._bootstrap = bootstrap_servers
        self._batch = batch
        self._idle = idle_seconds
        self.topic = topic_name(settings.topic_prefix, table.topic)
        self.published = 0
        self._producer: KafkaProducer | None = None
        # What the offsets table holds, kept as it is written: no read per batch.
        self._saved_offsets: dict[int, int] = {}

    def ensure_topic(self) -> None:
        ensure_topic(self._settings, self._bootstrap, self.topic, "casebook-outbox")

    def close(self) -> None:
        self._close_producer()

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set; stand by while another publisher holds the lock."""
        self.ensure_topic()
        backoff = 0.5
        while not stop.is_set():
            with leadership(self._database.url, f"outbox:{self._table.rows}", stop) as held:
                if held is None:
                    continue
                try:
                    # Autocommit: each `transaction()` block below commits on its own.
                    with psycopg.connect(self._database.url, autocommit=True) as conn:
                        self.recover(conn)
                        while not stop.is_set() and held.still_held():
                            published = self.publish_pending(conn)
                            report_lag(0 if not published else None, progressed=True)
                            if not published:
                                stop.wait(self._idle)
                            backoff = 0.5
                except KafkaConfigurationError as error:
                    # Retrying the same settings cannot help: stop loudly.
                    raise RuntimeError(
                        f"{self.topic}: Kafka client settings refused: {error}"
                    ) from None
                except (KafkaError, psycopg.OperationalError) as error:
                    log.warning(
                        "outbox.failed", topic=self.topic, error=str(error), retry_in=backoff
                    )
                    report_trouble(error)
                    self._close_producer()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
        self._close_producer()

    def recover(self, conn: psycopg.Connection[Any]) -> int:
        """Mark what an earlier publisher sent but did not mark; the number marked.

        `conn` must be in autocommit mode, as for `publish_pending`: the marks must
        commit before anything is sent.
        """
        query = self._sql("SELECT partition, next_offset FROM {offsets}")
        starts = dict(conn.execute(query).fetchall())
        partitions = topic_partitions(self._settings, self._bootstrap, self.topic)
        ends = end_offsets(self._settings, self._bootstrap, partitions)
        shorter = {tp.partition for tp, end in ends.items() if end < starts.get(tp.partition, 0)}
        if shorter or (starts and not partitions):
            self._republish_all(conn, f"partitions {sorted(shorter)} end before what was sent")
            starts = {}
        self._saved_offsets = dict(starts)
        found = _read_tail(self._settings, self._bootstrap, self.topic, starts)
        with conn.transaction():
            for partition, (ids, next_offset) in found.items():
                if ids:
                    conn.execute(
                        self._sql(
                            "UPDATE {rows} SET published_at = now() "
                            "WHERE id = ANY(%s) AND published_at IS NULL"
                        ),
                        (ids,),
                    )
                self._save_offset(conn, partition, next_offset)
        marked = sum(len(ids) for ids, _ in found.values())
        if marked:
            log.warning("outbox.recovered", topic=self.topic, marked=marked)
        return marked

    def publish_pending(self, conn: psycopg.Connection[Any]) -> int:
        """Send one batch of pending rows and mark it; the number published (0: idle)."""
        with conn.transaction():
            rows = conn.execute(
                self._sql(
                    "SELECT id, event_id, type, subject, time, payload, sequence FROM {rows} "
                    "WHERE published_at IS NULL ORDER BY id LIMIT %s"
                ),
                (self._batch,),
            ).fetchall()
        if not rows:
            return 0
        producer = self._producer or self._open_producer()
        futures = [producer.send(self.topic, **self._record(row)) for row in rows]
        producer.flush(timeout=self._ack_timeout_s)
        ends: dict[int, int] = {}
        lowest: dict[int, int] = {}
        for future in futures:
            metadata = future.get(timeout=self._ack_timeout_s)
            ends[metadata.partition] = max(ends.get(metadata.partition, 0), metadata.offset + 1)
            lowest[metadata.partition] = min(lowest.get(metadata.partition, metadata.offset),
                                             metadata.offset)  # fmt: skip
        saved = self._saved_offsets
        went_back = sorted(p for p, offset in lowest.items() if offset < saved.get(p, 0))
        if went_back:
            # A broker that lost the topic (and created it anew) took this batch without an
            # error: the offsets are the only sign. Everything goes out again.
            self._republish_all(conn, f"partitions {went_back} acknowledged offsets gone back")
            return len(rows)
        with conn.transaction():
            conn.execute(
                self._sql("UPDATE {rows} SET published_at = now() WHERE id = ANY(%s)"),
                ([row[0] for row in rows],),
            )
            for partition, next_offset in ends.items():
                self._save_offset(conn, partition, next_offset)
        self.published += len(rows)
        return len(rows)

    def _republish_all(self, conn: psycopg.Connection[Any], why: str) -> None:
        """The topic lost what was published: mark every row pending and forget the offsets.

        Consumers drop what they already applied by its sequence, so sending again is safe.
        """
        with conn.transaction():
            conn.execute(self._sql("UPDATE {rows} SET published_at = NULL"))
            conn.execute(self._sql("DELETE FROM {offsets}"))
        self._saved_offsets.clear()
        log.warning("outbox.topic.lost", topic=self.topic, why=why, action="republish all")

    def _record(self, row: Any) -> dict[str, Any]:
        return outbox_record(row, self._settings.event_source)

    def _save_offset(self, conn: psycopg.Connection[Any], partition: int, next_offset: int) -> None:
        conn.execute(
            self._sql(
                "INSERT INTO {offsets} (partition, next_offset) VALUES (%s, %s) "
                "ON CONFLICT (partition) DO UPDATE SET next_offset = EXCLUDED.next_offset"
            ),
            (partition, next_offset),
        )
        self._saved_offsets[partition] = next_offset

    def _sql(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(
            rows=sql.Identifier(self._table.rows), offsets=sql.Identifier(self._table.offsets)
        )

    def _open_producer(self) -> KafkaProducer:
        self._producer = new_producer(
            self._settings,
            self._bootstrap,
            client_id="casebook-outbox",
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            retry_backoff_ms=200,
        )
        return self._producer

    def _close_producer(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(KafkaError):
                self._producer.close(timeout=2)
            self._producer = None


def outbox_record(row: Any, source: str) -> dict[str, Any]:
    """The Kafka record (key, value, headers) of an outbox row
    (id, event_id, type, subject, time, payload, sequence)."""
    outbox_id, event_id, kind, subject, at, payload, sequence = row
    headers = [
        ("ce_specversion", SPEC_VERSION),
        ("ce_id", event_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", kind.encode()),
        ("ce_time", at.isoformat().encode()),
        ("ce_subject", subject.encode()),
        ("content-type", b"application/json"),
        # 1, 2, ... per subject, with no gaps: a reader sees a lost record as a gap.
        ("ce_sequence", str(sequence).encode()),
        ("ce_position", str(outbox_id).encode()),
    ]
    value = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return {"key": subject.encode(), "value": value, "headers": headers}


def _read_tail(
    settings: Settings, bootstrap: str, topic: str, starts: dict[int, int]
) -> dict[int, tuple[list[int], int]]:
    """Per partition, the outbox ids found from `starts[p]` to the end, and the end."""
    partitions = topic_partitions(settings, bootstrap, topic)
    ends = {tp.partition: end for tp, end in end_offsets(settings, bootstrap, partitions).items()}
    ids: dict[int, list[int]] = {tp.partition: [] for tp in partitions}
    reached = {tp.partition: starts.get(tp.partition, 0) for tp in partitions}
    behind = [tp for tp in partitions if reached[tp.partition] < ends[tp.partition]]
    if not behind:
        return {p: (ids[p], reached[p]) for p in ids}
    consumer = new_consumer(settings, bootstrap, enable_auto_commit=False)
    try:
        consumer.assign(behind)
        for tp in behind:
            consumer.seek(tp, reached[tp.partition])
        deadline = time.monotonic() + TAIL_READ_S
        while any(reached[tp.partition] < ends[tp.partition] for tp in behind):
            if time.monotonic() > deadline:
                raise KafkaTimeoutError(f"{topic}: the tail did not arrive in {TAIL_READ_S} s")
            for tp, records in consumer.poll(timeout_ms=TAIL_POLL_MS).items():
                for record in records:
                    position = dict(record.headers).get("ce_position")
                    if position is not None:
                        ids[tp.partition].append(int(position))
                    reached[tp.partition] = record.offset + 1
        return {p: (ids[p], reached[p]) for p in ids}
    finally:
        consumer.close()
