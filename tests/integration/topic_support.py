"""Reading a topic back from its beginning, as a test checks what was published."""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from casebook.settings import Settings
from messaging.kafka_clients import end_offsets, new_consumer
from tests.integration.relay_support import headers, wait_for


def consume(bootstrap: str, topic: str, expected: int, timeout: float = 20) -> list[Any]:
    """The first `expected` records of `topic` (fewer if `timeout` passes first)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(records) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    consumer.close()
    return records


def consume_all(bootstrap: str, topic: str, timeout: float = 60) -> list[Any]:
    """Every record of `topic`, up to the highwater marks seen while reading."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    try:
        assert wait_for(lambda: bool(consumer.partitions_for_topic(topic)), 10)
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                records.extend(batch)
            # tansu's end offsets are wrong; a fetch's highwater is right.
            marks = [consumer.highwater(tp) for tp in partitions]
            if all(mark is not None for mark in marks) and all(
                consumer.position(tp) >= mark for tp, mark in zip(partitions, marks, strict=True)
            ):
                return records
        raise AssertionError(f"{topic}: not read to its end in {timeout} s")
    finally:
        consumer.close()


def read_topic(settings: Settings, topic: str) -> list[dict[str, str]]:
    """The headers of every record of `topic`, read to the end offsets."""
    assert settings.kafka_bootstrap_servers is not None
    bootstrap = settings.kafka_bootstrap_servers
    consumer = new_consumer(settings, bootstrap, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))
        ]
        ends = end_offsets(settings, bootstrap, partitions)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        found: list[dict[str, str]] = []
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            assert time.monotonic() < deadline, f"{topic} not read to its end"
            for records in consumer.poll(timeout_ms=500).values():
                found.extend(headers(record) for record in records)
        return found
    finally:
        consumer.close()
