"""The SLA outbox publisher on real PostgreSQL and a real broker: once, even after a crash."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
from kafka import KafkaConsumer

from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from domain.values import Severity
from entrypoints.broker import Broker
from relay.outbox import OutboxPublisher, OutboxTable
from tests.integration.relay_support import wait_for
from tests.integration.sla_support import assess, project, rows, stored_envelopes
from tests.integration.write_side import open_request, register_organisation
from tests.kafka import ON_BOTH_BROKERS

pytestmark = [pytest.mark.integration, ON_BOTH_BROKERS]

SLA_OUTBOX = OutboxTable("casebook_sla_outbox", "casebook_sla_outbox_offsets", "sla-events.v1")


@pytest.fixture
def settings(clean_database: Database) -> Settings:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    return Settings(database_url=clean_database.url, topic_prefix=prefix, topic_partitions=3)


@pytest.fixture
def with_transitions(clean_database: Database) -> Iterator[int]:
    """Five assessed cases projected: ten rows waiting in the outbox (each case's triage
    clock started, then recomputed by the assessment)."""
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    organisation = register_organisation(casebook)
    for _ in range(5):
        assess(casebook, open_request(casebook, organisation), Severity.B)
    project(clean_database, stored_envelopes(casebook))
    casebook.close()
    yield 10


def published_ids(broker: Broker, topic: str, expected: int) -> Counter[str]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1500,
    )
    seen: Counter[str] = Counter()
    try:
        for record in consumer:
            seen[dict(record.headers)["ce_id"].decode()] += 1
    finally:
        consumer.close()
    assert sum(seen.values()) >= expected
    return seen


def publisher(database: Database, settings: Settings, broker: Broker) -> OutboxPublisher:
    return OutboxPublisher(
        database, settings, SLA_OUTBOX, bootstrap_servers=broker.bootstrap_servers
    )


def pending(database: Database) -> int:
    [(count,)] = rows(
        database, "SELECT count(*) FROM casebook_sla_outbox WHERE published_at IS NULL"
    )
    return int(count)


def test_the_publisher_sends_every_pending_transition_once_and_marks_it(
    clean_database: Database, settings: Settings, kafka_broker: Broker, with_transitions: int
) -> None:
    running = publisher(clean_database, settings, kafka_broker)
    stop = threading.Event()
    thread = threading.Thread(target=running.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: pending(clean_database) == 0, timeout=20)
    finally:
        stop.set()
        thread.join(timeout=20)
    seen = published_ids(kafka_broker, running.topic, with_transitions)
    outbox = {row[0] for row in rows(clean_database, "SELECT event_id FROM casebook_sla_outbox")}
    assert set(seen) == outbox and set(seen.values()) == {1}


def test_records_sent_but_not_marked_before_a_crash_are_not_sent_again(
    clean_database: Database, settings: Settings, kafka_broker: Broker, with_transitions: int
) -> None:
    first = publisher(clean_database, settings, kafka_broker)
    first.ensure_topic()
    with psycopg.connect(clean_database.url, autocommit=True) as conn:
        assert first.publish_pending(conn) == with_transitions
        # The crash: the broker has the records, PostgreSQL never heard of it.
        conn.execute("UPDATE casebook_sla_outbox SET published_at = NULL")
        conn.execute("DELETE FROM casebook_sla_outbox_offsets")
    first.close()
    second = publisher(clean_database, settings, kafka_broker)
    with psycopg.connect(clean_database.url, autocommit=True) as conn:
        assert second.recover(conn) == with_transitions
        assert second.publish_pending(conn) == 0
    second.close()
    seen = published_ids(kafka_broker, second.topic, with_transitions)
    assert len(seen) == with_transitions and set(seen.values()) == {1}


def add_transitions(database: Database, count: int) -> None:
    """`count` more assessed cases projected: twice as many more rows in the outbox."""
    casebook = Casebook.connect(database, Settings(database_url=database.url))
    organisation = register_organisation(casebook)
    cases = [open_request(casebook, organisation) for _ in range(count)]
    for case_id in cases:
        assess(casebook, case_id, Severity.B)
    envelopes = [e for e in stored_envelopes(casebook) if e.subject in {str(c) for c in cases}]
    project(database, envelopes)
    casebook.close()


def test_a_broker_that_lost_the_topic_gets_every_transition_again(
    clean_database: Database, settings: Settings, own_broker: Broker, with_transitions: int
) -> None:
    running = publisher(clean_database, settings, own_broker)
    stop = threading.Event()
    thread = threading.Thread(target=running.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: pending(clean_database) == 0, timeout=20)
        own_broker.empty()  # everything published so far is gone
        add_transitions(clean_database, 3)
        outbox = {
            row[0] for row in rows(clean_database, "SELECT event_id FROM casebook_sla_outbox")
        }
        assert len(outbox) == with_transitions + 2 * 3

        def all_on_topic() -> bool:
            return (
                pending(clean_database) == 0
                and set(published_ids(own_broker, running.topic, 0)) == outbox
            )

        assert wait_for(all_on_topic, timeout=60, every=1.0)
    finally:
        stop.set()
        thread.join(timeout=20)
