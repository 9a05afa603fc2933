"""Helpers for the consumer runtime tests: a recording projection, topics, publishing."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from casebook.database import Database
from casebook.settings import Settings
from consumers.envelope import Envelope, Poison
from consumers.runtime import ConsumerRuntime
from entrypoints.broker import Broker
from tests.integration.relay_support import wait_for

__all__ = ["wait_for"]
TOPIC = "events.v1"
WAIT_S = 30.0

TABLE = """
CREATE TABLE IF NOT EXISTS casebook_test_applied (
    id bigserial PRIMARY KEY,
    consumer_group text NOT NULL,
    subject text NOT NULL,
    sequence bigint NOT NULL,
    ce_id text NOT NULL
)
"""


class Crash(BaseException):
    """Stands for the process dying in the middle of a batch (nothing catches it)."""


class RecordingProjection:
    """Writes one row per applied event; fails on the ce_ids it is told to."""

    def __init__(self, name: str, *, contiguous: bool = False) -> None:
        self.name = name
        self.topics = (TOPIC,)
        # Gap-checked like the case-events topic, when the test asks for it.
        self.contiguous_topics = (TOPIC,) if contiguous else ()
        self.poison: set[str] = set()  # ce_ids raising Poison
        self.failing: set[str] = set()  # ce_ids raising RuntimeError every time
        self.alone: Counter[str] = Counter()  # calls with exactly that one event
        self.entered = threading.Event()  # set when a gated call starts
        self.release = threading.Event()  # a gated call waits for it
        self.gate_on_call: int | None = None  # the call number (1-based) that waits
        self.crash_on_call: int | None = None  # the call number that raises Crash
        self.calls = 0

    def apply(self, conn: psycopg.Connection[Any], events: Sequence[Envelope]) -> None:
        self.calls += 1
        if self.calls == self.gate_on_call:
            self.entered.set()
            assert self.release.wait(WAIT_S), "the test never released the gate"
        if self.calls == self.crash_on_call:
            raise Crash
        if len(events) == 1:
            self.alone[events[0].id] += 1
        for event in events:
            if event.id in self.poison:
                raise Poison(f"cannot apply {event.id}")
            if event.id in self.failing:
                raise RuntimeError(f"handler failed on {event.id}")
            conn.execute(
                "INSERT INTO casebook_test_applied (consumer_group, subject, sequence, ce_id)"
                " VALUES (%s, %s, %s, %s)",
                (self.name, event.subject, event.sequence, event.id),
            )


@dataclass(frozen=True)
class Setup:
    """One test's broker, database, topic prefix and settings."""

    broker: Broker
    database: Database
    settings: Settings

    @property
    def topic(self) -> str:
        return f"{self.settings.topic_prefix}.{TOPIC}"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.settings.topic_prefix}.dead-letters.v1"

    def projection(self) -> RecordingProjection:
        return RecordingProjection(f"group-{uuid.uuid4().hex[:8]}")

    def runtime(self, projection: RecordingProjection, **settings: Any) -> ConsumerRuntime:
        changed = self.settings.model_copy(update=settings)
        return ConsumerRuntime(
            projection, self.database, changed, status_interval_s=0.2, backoff=lambda _: None
        )


def make_setup(broker: Broker, database: Database, partitions: int) -> Setup:
    """A unique topic prefix with its events topic created; the test table emptied."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = Settings(
        kafka_bootstrap_servers=broker.bootstrap_servers,
        topic_prefix=prefix,
        topic_partitions=1,
        consumer_session_timeout_ms=2000,
        consumer_max_attempts=3,
    )
    setup = Setup(broker, database, settings)
    recreate_topic(setup, partitions)
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute(TABLE)
        conn.execute("TRUNCATE casebook_test_applied")
    return setup


def recreate_topic(setup: Setup, partitions: int = 1) -> None:
    """Create the events topic (again, after the broker lost it)."""
    with KafkaAdminClient(bootstrap_servers=setup.broker.bootstrap_servers) as admin:
        admin.create_topics(
            {setup.topic: {"num_partitions": partitions, "replication_factor": 1}},
            wait_for_metadata=True,
        )


def event(
    subject: str, sequence: int, *, data: Any = None, drop: str | None = None
) -> tuple[bytes, list[tuple[str, bytes]], bytes]:
    """(key, headers, value) of a CloudEvent as the relay publishes it; `drop` omits a header."""
    headers = {
        "ce_specversion": "1.0",
        "ce_id": f"{subject}:{sequence}",
        "ce_source": "/test",
        "ce_type": "casebook.test.happened.v1",
        "ce_time": "2025-01-24T09:00:00+00:00",
        "ce_subject": subject,
        "content-type": "application/json",
        "ce_sequence": str(sequence),
    }
    headers.pop(drop or "", None)
    value = json.dumps({"n": sequence} if data is None else data).encode()
    return subject.encode(), [(k, v.encode()) for k, v in headers.items()], value


def publish(setup: Setup, *records: tuple[bytes, list[tuple[str, bytes]], bytes]) -> None:
    """Send records to the events topic (keyed, so each subject stays in one partition)."""
    producer = KafkaProducer(bootstrap_servers=setup.broker.bootstrap_servers, acks="all")
    try:
        for key, headers, value in records:
            producer.send(setup.topic, key=key, value=value, headers=headers)
        producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)


def applied(setup: Setup, group: str, subject: str | None = None) -> list[str]:
    """ce_ids the projection wrote, in the order it wrote them."""
    with psycopg.connect(setup.database.url) as conn:
        rows = conn.execute(
            "SELECT ce_id FROM casebook_test_applied WHERE consumer_group = %s"
            " AND (%s::text IS NULL OR subject = %s) ORDER BY id",
            (group, subject, subject),
        ).fetchall()
    return [ce_id for (ce_id,) in rows]


def scalar(database: Database, query: str, *params: Any) -> Any:
    """The first column of the first row."""
    with psycopg.connect(database.url) as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def fetch(database: Database, query: str, *params: Any) -> tuple[Any, ...]:
    """The first row."""
    with psycopg.connect(database.url) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return tuple(row)


def consume_all(setup: Setup, topic: str) -> list[Any]:
    """Every record of `topic` so far (without a group)."""
    from kafka import TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=setup.broker.bootstrap_servers)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        for batch in consumer.poll(timeout_ms=1000).values():
            records.extend(batch)
        return records
    finally:
        consumer.close()


class Running:
    """A runtime on its own thread."""

    def __init__(self, runtime: ConsumerRuntime) -> None:
        self.runtime = runtime
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.runtime.run(self.stop)
        except BaseException as error:
            self.error = error

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=WAIT_S)
        assert not self.thread.is_alive(), "the runtime did not stop"
        assert self.error is None, self.error


@contextmanager
def running(runtime: ConsumerRuntime) -> Iterator[Running]:
    """Run `runtime` for the block; stop it (and check it stopped cleanly) after."""
    thread = Running(runtime)
    try:
        yield thread
    finally:
        thread.close()


def commit_kafka_offsets(setup: Setup, group: str, offsets: dict[int, int]) -> None:
    """Store offsets in Kafka for `group` (what Kafka tooling would do)."""
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(
        bootstrap_servers=setup.broker.bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
    )
    try:
        consumer.commit(
            {
                TopicPartition(setup.topic, p): OffsetAndMetadata(o, "", -1)
                for p, o in offsets.items()
            }
        )
    finally:
        consumer.close(autocommit=False)


def kafka_committed(setup: Setup, group: str, partitions: int) -> dict[int, int | None]:
    """What Kafka holds as the group's committed offsets."""
    from kafka import TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=setup.broker.bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
    )
    try:
        return {p: consumer.committed(TopicPartition(setup.topic, p)) for p in range(partitions)}
    finally:
        consumer.close(autocommit=False)
