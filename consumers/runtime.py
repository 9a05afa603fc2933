"""The consumer-group runtime every projection runs on.

Each polled batch is applied and its offsets, subject sequences, held-back events and
dead letters are stored in ONE PostgreSQL transaction (`consumers.batch`). On every
(re)assignment the partitions are sought to the offsets stored there, never to Kafka's
committed ones, so a crash at any point neither loses nor applies an event twice. Kafka
offsets are committed afterwards only so Kafka tooling shows the lag.

It stays one module: the poll loop and all that runs between polls share its state.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from casebook.database import Database
from casebook.settings import Settings
from casebook.supervision import report_lag
from consumers import gaps, state
from consumers.batch import BatchResult, apply_batch, default_backoff
from consumers.deadletters import DeadLetterPublisher
from consumers.metrics import Metrics, Rate
from consumers.projection import Projection
from consumers.rebalance import RebalanceHandler
from consumers.records import Raw
from consumers.state import Partition
from messaging.kafka_clients import (
    end_offsets,
    ensure_topic,
    fetch_max_wait_ms,
    security_options,
    topic_ids,
)

log = structlog.get_logger("casebook.consumers")

METADATA_MAX_AGE_MS = 5_000
ConsumerFactory = Callable[[dict[str, Any]], KafkaConsumer]
POLL_TIMEOUT_MS = 500
STATUS_INTERVAL_S = 10.0
GAP_CHECK_INTERVAL_S = 1.0
MAX_DB_BACKOFF_S = 10.0


class ConsumerError(RuntimeError):
    """The runtime cannot start (no brokers configured, say); the message says why."""


class ConsumerRuntime:
    """Runs one projection as a member of the consumer group named after it."""

    def __init__(
        self,
        projection: Projection,
        db: Database,
        settings: Settings,
        *,
        consumer_factory: ConsumerFactory | None = None,
        producer_factory: Callable[[], KafkaProducer] | None = None,
        member: str | None = None,
        status_interval_s: float = STATUS_INTERVAL_S,
        backoff: Callable[[int], None] = default_backoff,
    ) -> None:
        if settings.kafka_bootstrap_servers is None:
            raise ConsumerError("set KAFKA_BOOTSTRAP_SERVERS to the Kafka brokers")
        self.projection = projection
        self.group = projection.name
        self.topics = tuple(f"{settings.topic_prefix}.{topic}" for topic in projection.topics)
        self.contiguous_topics = tuple(
            f"{settings.topic_prefix}.{topic}" for topic in projection.contiguous_topics
        )
        self.member = member or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._db = db
        self._settings = settings
        self._bootstrap = settings.kafka_bootstrap_servers
        self._new_consumer = consumer_factory or (lambda config: KafkaConsumer(**config))
        self._publisher = DeadLetterPublisher(
            settings, self._bootstrap, producer_factory=producer_factory
        )
        self._status_interval = status_interval_s
        self._backoff = backoff
        self._rate = Rate()
        self._metrics = Metrics(self.group, self.member)
        self._started_at = datetime.now(UTC)
        self._consumer: KafkaConsumer | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._positions: dict[Partition, int] = {}  # next offset stored in PostgreSQL
        self._resync_needed = False

    @property
    def metrics(self) -> Metrics:
        """The latest snapshot (safe to read from any thread)."""
        return self._metrics

    def consumer_config(self) -> dict[str, Any]:
        """What the Kafka consumer is built from (`consumer_factory` receives it)."""
        session = self._settings.consumer_session_timeout_ms
        return {
            "bootstrap_servers": self._bootstrap,
            **security_options(self._settings),
            "group_id": self.group,
            "client_id": f"casebook-{self.group}-{self.member}",
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_records": self._settings.consumer_batch_max,
            "fetch_max_wait_ms": fetch_max_wait_ms(self._settings),
            "session_timeout_ms": session,
            "heartbeat_interval_ms": max(session // 4, 100),
            # A topic made a moment ago may first be described without its partitions (no
            # leader yet); the group then assigns nothing until the next metadata refresh,
            # five minutes away by default. Look again every few seconds instead.
            "metadata_max_age_ms": METADATA_MAX_AGE_MS,
        }

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; then finish the batch in hand, commit, close."""
        self._publisher.ensure_topic()
        for topic in self.topics:
            # A subscription to a topic that does not exist yet sees it only at the next
            # metadata refresh (minutes on Apache Kafka): make it, as its writer would.
            ensure_topic(self._settings, self._bootstrap, topic, "casebook-consumer")
        self._conn = psycopg.connect(self._db.url)
        try:
            consumer = self._consumer = self._new_consumer(self.consumer_config())
            consumer.subscribe(
                topics=list(self.topics),
                listener=RebalanceHandler(self._on_revoked, self._on_assigned),
            )
            log.info("consumer.started", group=self.group, member=self.member, topics=self.topics)
            next_status = next_gap_check = time.monotonic()
            while not stop.is_set():
                polled = consumer.poll(
                    timeout_ms=POLL_TIMEOUT_MS, max_records=self._settings.consumer_batch_max
                )
                if self._resync_needed:
                    self._resync(stop)  # what was polled may come from Kafka's offsets
                    continue
                records = [Raw.of(r) for batch in polled.values() for r in batch]
                if records:
                    self._handle(records, stop)
                self._refresh_metrics()
                if time.monotonic() >= next_gap_check:
                    self._park_expired_waits(stop)
                    next_gap_check = time.monotonic() + GAP_CHECK_INTERVAL_S
                if time.monotonic() >= next_status:
                    self._report()
                    next_status = time.monotonic() + self._status_interval
        finally:
            self._close()

    def _handle(self, records: list[Raw], stop: threading.Event) -> None:
        conn = self._conn
        assert conn is not None
        try:
            if not self._rewind_truncated(records):
                return
            with conn.transaction():
                result = apply_batch(
                    conn,
                    self.projection,
                    records,
                    max_attempts=self._settings.consumer_max_attempts,
                    backoff=self._backoff,
                    contiguous=self.contiguous_topics,
                )
        except psycopg.Error as error:
            # Nothing of the batch is stored: read it again from the stored offsets.
            log.error("consumer.database.failed", group=self.group, error=str(error).strip())
            self._reconnect(stop)
            self._resync(stop)
            return
        self._positions.update(result.next_offsets)
        self._rate.add(result.records)
        for dead in result.dead_letters:
            self._publisher.publish(dead)
        self._commit_to_kafka(result.next_offsets)
        self._refresh_metrics(result)
        log.info(
            "consumer.batch.applied",
            group=self.group,
            count=result.records,
            applied=result.applied,
            duplicates=result.duplicates,
            held=result.held,
            dead_lettered=len(result.dead_letters),
            lag=self._metrics.total_lag,
        )

    def _commit_to_kafka(self, offsets: dict[Partition, int]) -> None:
        """Tell Kafka too (for its tooling); PostgreSQL already holds the truth."""
        if not offsets or self._consumer is None:
            return
        try:
            self._consumer.commit(
                {
                    TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                    for (t, p), o in offsets.items()
                }
            )
        except KafkaError as error:
            log.warning("consumer.kafka_commit.failed", group=self.group, error=str(error))

    def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        """Seek every assigned partition to its offset in PostgreSQL (or the beginning)."""
        try:
            self._seek(assigned)
        except Exception as error:  # raised into kafka-python, it would end the consumer
            log.error("consumer.seek.failed", group=self.group, error=str(error).strip())
            self._resync_needed = True

    def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        # Runs on kafka-python's IO thread while `poll` waits, so no blocking consumer
        # calls here. Nothing is in hand: each batch was stored (and committed to Kafka)
        # before the next poll.
        log.info("consumer.partitions.revoked", group=self.group, member=self.member,
                 partitions=_names(revoked))  # fmt: skip
        for tp in revoked:
            self._positions.pop((tp.topic, tp.partition), None)

    def _seek(self, partitions: list[TopicPartition]) -> None:
        consumer, conn = self._consumer, self._conn
        assert consumer is not None and conn is not None
        topics = sorted({tp.topic for tp in partitions})
        current = topic_ids(self._settings, self._bootstrap, topics) if topics else {}
        with conn.transaction():
            for topic in state.replace_topic_ids(conn, self.group, current):
                log.warning(
                    "consumer.topic.recreated",
                    group=self.group,
                    topic=topic,
                    topic_id=current[topic],
                    action="reading it again from the start; what was applied is dropped "
                    "by sequence",
                )
            stored = state.stored_offsets(
                conn, self.group, [(p.topic, p.partition) for p in partitions]
            )
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)
                self._positions[(tp.topic, tp.partition)] = offset
        log.info(
            "consumer.partitions.assigned",
            group=self.group,
            member=self.member,
            partitions=_names(partitions),
            offsets={f"{t}:{p}": o for (t, p), o in sorted(stored.items())},
        )

    def _rewind_truncated(self, records: list[Raw]) -> bool:
        """Read a partition again from its start when the broker's log ends before the
        offset stored for it (the topic was emptied, deleted or recreated).

        The consumer then gets records below that offset: left as they are, they would
        pass for what the group applied already, and be skipped for ever. Rewound, they
        are applied unless their sequence says they were. False when that could not be
        settled: the batch is not applied, and is read again.
        """
        below = sorted(
            {
                (r.topic, r.partition)
                for r in records
                if r.offset < self._positions.get((r.topic, r.partition), 0)
            }
        )
        if not below:
            return True
        partitions = [TopicPartition(topic, partition) for topic, partition in below]
        try:
            ends = end_offsets(self._settings, self._bootstrap, partitions)
        except KafkaError as error:
            log.warning("consumer.end_offsets.failed", group=self.group, error=str(error))
            self._resync_needed = True
            return False
        truncated = {
            (tp.topic, tp.partition): 0
            for tp in partitions
            if ends.get(tp, 0) < self._positions[(tp.topic, tp.partition)]
        }
        if not truncated:
            return True
        conn = self._conn
        assert conn is not None
        with conn.transaction():
            state.rewind_offsets(conn, self.group, truncated)
        for partition in truncated:
            log.warning(
                "consumer.topic.truncated",
                group=self.group,
                partition=f"{partition[0]}:{partition[1]}",
                stored_offset=self._positions[partition],
                log_end=ends.get(TopicPartition(*partition), 0),
                action="reading it again from the start; what was applied is dropped by sequence",
            )
            self._positions[partition] = 0
        return True

    def _park_expired_waits(self, stop: threading.Event) -> None:
        """Park the subjects that waited too long for a missing event (`sequence-gap`)."""
        conn = self._conn
        assert conn is not None
        timeout = self._settings.consumer_gap_timeout_seconds
        try:
            with conn.transaction():
                dead_letters = gaps.park_expired(conn, self.group, timeout)
        except psycopg.Error as error:
            log.error("consumer.database.failed", group=self.group, error=str(error).strip())
            self._reconnect(stop)
            self._resync(stop)
            return
        for dead in dead_letters:
            self._publisher.publish(dead)

    def _resync(self, stop: threading.Event) -> None:
        """Seek every assigned partition back to PostgreSQL's offsets, retrying until it works."""
        consumer = self._consumer
        assert consumer is not None
        attempt = 0
        while not stop.is_set():
            try:
                self._seek(sorted(consumer.assignment(), key=lambda tp: (tp.topic, tp.partition)))
            except KafkaError as error:
                attempt += 1
                log.warning("consumer.seek.failed", group=self.group, error=str(error).strip())
                stop.wait(min(0.5 * attempt, MAX_DB_BACKOFF_S))
                continue
            except psycopg.Error as error:
                attempt += 1
                log.error("consumer.seek.failed", group=self.group, error=str(error).strip())
                self._reconnect(stop)
                stop.wait(min(0.5 * attempt, MAX_DB_BACKOFF_S))
                continue
            self._resync_needed = False
            return
        self._resync_needed = True

    def _reconnect(self, stop: threading.Event) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        attempt = 0
        while not stop.is_set():
            try:
                self._conn = psycopg.connect(self._db.url)
                return
            except psycopg.Error as error:
                attempt += 1
                delay = min(0.5 * 2**attempt, MAX_DB_BACKOFF_S)
                log.warning(
                    "consumer.database.unavailable", error=str(error).strip(), retry_in_s=delay
                )
                stop.wait(delay)

    def _refresh_metrics(self, result: BatchResult | None = None) -> None:
        self._metrics = self._metrics.advanced(self._consumer, self._positions, self._rate, result)
        report_lag(self._metrics.total_lag, progressed=bool(result and result.records))
        if result and result.dead_letters:
            self._report(log_line=False)

    def _report(self, *, log_line: bool = True) -> None:
        """Refresh the parked count, upsert this member's status row, log the metrics."""
        conn = self._conn
        assert conn is not None
        try:
            with conn.transaction():
                parked = state.parked_count(conn, self.group)
                metrics = self._metrics = replace(self._metrics, parked=parked)
                state.save_status(conn, metrics.status(self._started_at))
        except psycopg.Error as error:
            log.warning("consumer.status.failed", group=self.group, error=str(error).strip())
            return
        if log_line:
            log.info(
                "consumer.metrics",
                group=self.group,
                member=self.member,
                lag=metrics.total_lag,
                events_per_second=round(metrics.events_per_second, 1),
                parked=metrics.parked,
                applied=metrics.applied,
                dead_lettered=metrics.dead_lettered,
                partitions=metrics.partitions(),
            )

    def _close(self) -> None:
        consumer, conn = self._consumer, self._conn
        if consumer is not None:
            self._commit_to_kafka(dict(self._positions))
            with contextlib.suppress(KafkaError):
                consumer.close(autocommit=False)  # leaves the group: the others rebalance at once
        if conn is not None:
            with contextlib.suppress(psycopg.Error), conn.transaction():
                state.delete_status(conn, self.group, self.member)
            with contextlib.suppress(psycopg.Error):
                conn.close()
        self._publisher.close()
        self._consumer = self._conn = None
        log.info("consumer.stopped", group=self.group, member=self.member,
                 applied=self._metrics.applied)  # fmt: skip


def _names(partitions: list[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}:{tp.partition}" for tp in partitions)
